from liveroom.cli import main

raise SystemExit(main())
