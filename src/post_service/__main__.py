from post_service.cli import main

raise SystemExit(main())
