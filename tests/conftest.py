import sys
from pathlib import Path

# The tool under test lives at the repository root, beside tests/.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
