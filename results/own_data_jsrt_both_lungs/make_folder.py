"""Prepare a folder dataset from JSRT/SCR: grey 1024^2 PNG images + both-lungs masks (<stem>_mask.png)."""
import sys
from pathlib import Path
import numpy as np
from PIL import Image
src, dst = Path(sys.argv[1]), Path(sys.argv[2])
for img in sorted((src / "images").glob("*.png")):
    stem = img.name.split(".")[0]
    left = np.asarray(Image.open(src / "masks/left_lung" / f"{stem}.gif").convert("L")) > 0
    right = np.asarray(Image.open(src / "masks/right_lung" / f"{stem}.gif").convert("L")) > 0
    grey = Image.open(img).convert("L").resize(left.shape[::-1], Image.LANCZOS)
    grey.save(dst / "images" / f"{stem}.png")
    Image.fromarray(((left | right) * 255).astype(np.uint8)).save(dst / "masks" / f"{stem}_mask.png")
print("done", len(list((dst / "images").glob("*.png"))))
