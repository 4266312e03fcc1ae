import sys

from commpress.cli import main

sys.exit(main())
