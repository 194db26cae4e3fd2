from aivp.cli import main

raise SystemExit(main())
