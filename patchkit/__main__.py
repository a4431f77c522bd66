import sys

from patchkit.cli.main import main

sys.exit(main())
