"""`python experiments/scr_lung.py --help`: one row of the paper's tables for scr_lung (library: gan_seg_aug/experiment.py)."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # runnable from a plain checkout too

from gan_seg_aug.cli.flags import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main("scr_lung"))
