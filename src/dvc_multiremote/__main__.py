from dvc_multiremote.cli import main

raise SystemExit(main())
