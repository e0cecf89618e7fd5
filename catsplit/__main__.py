import sys

from catsplit.cli import main

sys.exit(main())
