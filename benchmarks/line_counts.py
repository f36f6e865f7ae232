"""Line counts of the non-test Python of a commit: all lines, and code lines (no blank lines, comments or
docstrings), per file and in total; the largest classes and functions (lines, docstrings included).

Usage: python benchmarks/line_counts.py [COMMIT] > out.json   (default: the working tree)
"""

import ast
import io
import json
import subprocess
import sys
import tokenize


def sources(commit):
    if commit is None:
        names = subprocess.run(["git", "ls-files", "*.py"], capture_output=True, text=True, check=True).stdout.split()
        names += subprocess.run(["git", "ls-files", "--others", "--exclude-standard", "*.py"], capture_output=True,
                                text=True, check=True).stdout.split()
        return {n: open(n).read() for n in names if not n.startswith("tests/")}
    names = subprocess.run(["git", "ls-tree", "-r", "--name-only", commit], capture_output=True, text=True,
                           check=True).stdout.split()
    return {n: subprocess.run(["git", "show", f"{commit}:{n}"], capture_output=True, text=True, check=True).stdout
            for n in names if n.endswith(".py") and not n.startswith("tests/")}


def code_lines(text):
    """Lines holding a token other than a comment, a docstring, or a line break."""
    tree = ast.parse(text)
    doc = set()
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr) \
                and isinstance(body[0].value, ast.Constant) and isinstance(body[0].value.value, str):
            doc.update(range(body[0].lineno, body[0].end_lineno + 1))
    lines = set()
    skip = (tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT, tokenize.ENDMARKER)
    for tok in tokenize.generate_tokens(io.StringIO(text).readline):
        if tok.type not in skip:
            lines.update(n for n in range(tok.start[0], tok.end[0] + 1) if n not in doc)
    return len(lines)


def blocks(name, text):
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            kind = "class" if isinstance(node, ast.ClassDef) else "function"
            yield kind, f"{name}:{node.name}", node.end_lineno - node.lineno + 1


def main():
    commit = sys.argv[1] if len(sys.argv) > 1 else None
    files = {n: {"lines": t.count("\n"), "code": code_lines(t)} for n, t in sorted(sources(commit).items())}
    found = [b for n, t in sources(commit).items() for b in blocks(n, t)]
    top = lambda kind: sorted(([q, n] for k, q, n in found if k == kind), key=lambda b: -b[1])[:8]  # noqa: E731
    total = {k: sum(f[k] for f in files.values()) for k in ("lines", "code")}
    core = {k: sum(f[k] for n, f in files.items() if n.startswith(("crossbar/", "models/"))) for k in ("lines", "code")}
    resolved = subprocess.run(["git", "rev-parse", "--short", commit], capture_output=True, text=True,
                              check=True).stdout.strip() if commit else "working tree"
    json.dump({"commit": resolved, "total": total, "crossbar_and_models": core,
               "largest_classes": top("class"), "largest_functions": top("function"), "files": files},
              sys.stdout, indent=1)


if __name__ == "__main__":
    main()
