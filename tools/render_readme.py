"""Write the README's model table from the code (ganforge/models/describe.py), between its markers.

    python tools/render_readme.py            # rewrite README.md's table
    python tools/render_readme.py --check    # exit 1, saying which rows differ, when README.md is out of date
"""
import argparse
import sys
from pathlib import Path

from ganforge.models.describe import BEGIN, END, with_table

README = Path(__file__).resolve().parents[1] / "README.md"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 when the README differs")
    parser.add_argument("--readme", type=Path, default=README, help="the README to write or check (default: README.md)")
    args = parser.parse_args(argv)
    text = args.readme.read_text()
    try:
        rendered = with_table(text)
    except ValueError as e:
        print(f"{args.readme}: {e}", file=sys.stderr)
        return 2
    if rendered == text:
        print(f"{args.readme}: the model table is up to date")
        return 0
    if args.check:
        old, new = set(_table_lines(text)), set(_table_lines(rendered))
        stale = [line.split("|")[1].strip() for line in old - new if line.startswith("| `")]
        print(f"{args.readme}: the model table differs from the code ({', '.join(stale) or 'layout'}); "
              f"run python tools/render_readme.py", file=sys.stderr)
        return 1
    args.readme.write_text(rendered)
    print(f"{args.readme}: model table written")
    return 0


def _table_lines(text: str):
    return text[text.find(BEGIN) : text.find(END)].splitlines()


if __name__ == "__main__":
    sys.exit(main())
