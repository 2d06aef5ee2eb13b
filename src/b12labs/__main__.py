import os
import sys

from .cli import main

code = main()
try:
    sys.stdout.flush()
except BrokenPipeError:  # the pipe's reader left while the last bytes were buffered
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    code = 141
sys.exit(code)
