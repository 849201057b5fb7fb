#!/usr/bin/env python3
"""Import cycles between the modules of src/.

Reads src/**/*.rs (the library crate; src/main.rs and src/bin/ are crates of their own
and are skipped), maps each file to its module path (src/a/b.rs and src/a/b/mod.rs are
crate::a::b; inline `mod x { ... }` blocks are modules too), and collects every
reference to another module of the crate: `use crate::...`, `use super::...`,
`use self::...` (groups expanded), and `crate::` / `super::` / `self::` paths in code.
Comments (doc comments and intra-doc links included) and string literals are not code
and are ignored. A name a module re-exports from one of its own submodules
(`pub use child::Item`) is followed to that submodule.

A reference from module M to module T counts at the level of their closest common
ancestor P: it is an edge between the two children of P that hold M and T. So a
reference from auth::grants to store::sessions is the edge auth -> store among the
top-level modules, and one from auth::keys to auth::tokens is keys -> tokens inside
auth. References between a module and its own ancestors or descendants are not edges.

Prints every elementary cycle once, for the top-level modules and for the children of
each module, with one reference (file:line) for each edge of it and how many there
are. Edges that only test code makes are marked [tests]; `--no-tests` leaves
`#[cfg(test)]` items out. With `--check` the exit status is 1 when a cycle is found.
Standard library only.
"""

import argparse
import os
import re
import sys
from collections import defaultdict

IDENT = re.compile(r"r#[A-Za-z_][A-Za-z0-9_]*|[A-Za-z_][A-Za-z0-9_]*")
PATH_ROOTS = ("crate", "super", "self")


def strip_comments_and_strings(text):
    """The text with comments, string and char literals blanked (newlines kept)."""
    out = []
    i, n = 0, len(text)

    def blank(segment):
        return "".join("\n" if c == "\n" else " " for c in segment)

    while i < n:
        c = text[i]
        nxt = text[i + 1] if i + 1 < n else ""
        if c == "/" and nxt == "/":
            end = text.find("\n", i)
            end = n if end == -1 else end
            out.append(blank(text[i:end]))
            i = end
        elif c == "/" and nxt == "*":
            depth, j = 1, i + 2
            while j < n and depth:
                if text.startswith("/*", j):
                    depth, j = depth + 1, j + 2
                elif text.startswith("*/", j):
                    depth, j = depth - 1, j + 2
                else:
                    j += 1
            out.append(blank(text[i:j]))
            i = j
        elif c in "rb" and re.match(r"(br|rb|r)#*\"", text[i : i + 260]) and (
            i == 0 or not (text[i - 1].isalnum() or text[i - 1] == "_")
        ):
            m = re.match(r"(br|rb|r)(#*)\"", text[i:])
            hashes = m.group(2)
            start = i + len(m.group(0))
            end = text.find('"' + hashes, start)
            end = n if end == -1 else end + 1 + len(hashes)
            out.append(blank(text[i:end]))
            i = end
        elif c == '"' or (c == "b" and nxt == '"' and (i == 0 or not text[i - 1].isalnum())):
            j = i + (2 if c == "b" else 1)
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            out.append(blank(text[i : j + 1]))
            i = j + 1
        elif c == "'":
            # A char literal ('x', '\n', '\u{1F600}'), or else a lifetime / label.
            m = re.match(r"'(\\(u\{[0-9A-Fa-f]+\}|x[0-9A-Fa-f]{2}|.)|[^\\'\n])'", text[i:])
            if m:
                out.append(blank(m.group(0)))
                i += len(m.group(0))
            else:
                out.append(c)
                i += 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


def tokenize(text):
    """(token, line) pairs: identifiers, `::`, and single punctuation characters."""
    tokens = []
    line = 1
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c == "\n":
            line += 1
            i += 1
        elif c.isspace():
            i += 1
        elif c.isalpha() or c == "_":
            m = IDENT.match(text, i)
            word = m.group(0)
            tokens.append((word[2:] if word.startswith("r#") else word, line))
            i = m.end()
        elif c.isdigit():
            m = re.compile(r"[0-9][0-9A-Za-z_.]*").match(text, i)
            tokens.append(("0", line))
            i = m.end()
        elif text.startswith("::", i):
            tokens.append(("::", line))
            i += 2
        else:
            tokens.append((c, line))
            i += 1
    return tokens


def file_module(path):
    """Module path (a tuple) of a file under src/, or None for another crate root."""
    rel = os.path.relpath(path, "src").replace(os.sep, "/")
    if rel in ("main.rs",) or rel.startswith("bin/"):
        return None
    if rel == "lib.rs":
        return ()
    parts = rel[: -len(".rs")].split("/")
    if parts[-1] == "mod":
        parts = parts[:-1]
    return tuple(parts)


class Reference:
    __slots__ = ("module", "path", "file", "line", "test", "text")

    def __init__(self, module, path, file, line, test, text):
        self.module = module
        self.path = path
        self.file = file
        self.line = line
        self.test = test
        self.text = text


def path_at(tokens, i):
    """(segments, index after) if a `crate::` / `super::` / `self::` path starts at i."""
    tok = tokens[i][0]
    if not (
        tok in PATH_ROOTS
        and i + 1 < len(tokens)
        and tokens[i + 1][0] == "::"
        and (i == 0 or tokens[i - 1][0] not in ("::", "$", "in"))
    ):
        return None
    segments = [tok]
    j = i + 1
    while j + 1 < len(tokens) and tokens[j][0] == "::" and IDENT.fullmatch(tokens[j + 1][0]):
        segments.append(tokens[j + 1][0])
        j += 2
    return segments, j


def paths_in(tokens, start, end):
    """Every path of `path_at` in tokens[start:end], with its line."""
    out = []
    i = start
    while i < end:
        found = path_at(tokens, i)
        if found is None:
            i += 1
        else:
            out.append((found[0], tokens[i][1]))
            i = found[1]
    return out


def parse_use_tree(tokens, i, prefix, leaves):
    """Parses one use-tree at tokens[i]; appends (segments, alias, line); returns the
    index after it."""
    segments = list(prefix)
    while i < len(tokens):
        tok, line = tokens[i]
        if tok == "{":
            i += 1
            while i < len(tokens) and tokens[i][0] != "}":
                i = parse_use_tree(tokens, i, segments, leaves)
                if i < len(tokens) and tokens[i][0] == ",":
                    i += 1
            return i + 1
        if tok == "*":
            leaves.append((segments, "*", line))
            return i + 1
        if tok == "::":
            i += 1
            continue
        if IDENT.fullmatch(tok):
            if tok == "self" and segments:
                name = segments[-1]
                here = list(segments)
            else:
                here = segments + [tok]
                name = tok
            i += 1
            if i < len(tokens) and tokens[i][0] == "::":
                segments = here
                continue
            if i + 1 < len(tokens) and tokens[i][0] == "as":
                name = tokens[i + 1][0]
                i += 2
            leaves.append((here, name, line))
            return i
        return i + 1
    return i


def scan_file(path, module, no_tests):
    """The references of one file, its inline modules and its `pub use` leaves."""
    with open(path, encoding="utf-8") as f:
        tokens = tokenize(strip_comments_and_strings(f.read()))
    refs = []
    inline_modules = []
    reexports = []  # (module, alias, segments)
    # Stack of (module path, brace depth outside it, is test).
    stack = [(module, 0, False)]
    depth = 0
    pending_test = False
    test_item = None
    skip_until_depth = None
    i = 0
    while i < len(tokens):
        tok, line = tokens[i]
        current, _, in_test = stack[-1]
        if tok == "#" and i + 1 < len(tokens) and tokens[i + 1][0] in ("[", "!"):
            # An attribute: note #[cfg(test)] (and cfg(all(test, ...))) for the next item.
            j = i + 1
            while j < len(tokens) and tokens[j][0] != "[":
                j += 1
            bracket, k = 0, j
            words = []
            while k < len(tokens):
                if tokens[k][0] == "[":
                    bracket += 1
                elif tokens[k][0] == "]":
                    bracket -= 1
                    if bracket == 0:
                        break
                words.append(tokens[k][0])
                k += 1
            if "cfg" in words and "test" in words and "not" not in words:
                pending_test = True
            # Paths inside attributes are references too (`#[diesel(table_name = ...)]`,
            # utoipa's `body = crate::...`).
            if not (no_tests and (in_test or test_item is not None)):
                for segments, ref_line in paths_in(tokens, j, k):
                    refs.append(
                        Reference(current, segments, path, ref_line, in_test, "::".join(segments))
                    )
            i = k + 1
            continue
        if tok == "{":
            depth += 1
        elif tok == "}":
            depth -= 1
            if len(stack) > 1 and depth == stack[-1][1]:
                stack.pop()
            if skip_until_depth is not None and depth == skip_until_depth:
                skip_until_depth = None
        if skip_until_depth is not None:
            i += 1
            continue
        if tok == "mod" and i + 2 < len(tokens) and tokens[i + 2][0] == "{":
            name = tokens[i + 1][0]
            is_test = in_test or pending_test
            pending_test = False
            if is_test and no_tests:
                skip_until_depth = depth
                i += 2
                continue
            stack.append((current + (name,), depth, is_test))
            inline_modules.append(current + (name,))
            i += 2
            continue
        if tok == "use":
            is_test = in_test or pending_test
            pending_test = False
            public = i > 0 and (tokens[i - 1][0] == "pub" or tokens[i - 1][0] == ")")
            leaves = []
            j = i + 1
            if j < len(tokens) and tokens[j][0] == "::":
                j += 1
            end = parse_use_tree(tokens, j, [], leaves)
            for segments, alias, leaf_line in leaves:
                if is_test and no_tests:
                    continue
                if segments and segments[0] in PATH_ROOTS or len(segments) > 1:
                    refs.append(
                        Reference(current, segments, path, leaf_line, is_test, "::".join(segments))
                    )
                if public and alias != "*":
                    reexports.append((current, alias, segments))
            while end < len(tokens) and tokens[end][0] != ";":
                end += 1
            i = end + 1
            continue
        if pending_test and tok not in ("pub", "(", "crate", "super", "in", ")"):
            # Another item under #[cfg(test)]: test code until its end (a `;` before
            # any block, or the close of its first block).
            pending_test = False
            test_item = depth
        if test_item is not None:
            in_test = True
            if tok == ";" and depth == test_item:
                test_item = None
            elif tok == "}" and depth == test_item:
                test_item = None
            if no_tests:
                i += 1
                continue
        found = path_at(tokens, i)
        if found is not None:
            segments, j = found
            if not (in_test and no_tests):
                refs.append(Reference(current, segments, path, line, in_test, "::".join(segments)))
            i = j
            continue
        i += 1
    return refs, inline_modules, reexports


def resolve(module, segments, modules, reexports):
    """The module a path names, seen from `module`; None if outside the crate."""
    if not segments:
        return None
    first = segments[0]
    if first == "crate":
        base, rest = (), segments[1:]
    elif first in ("super", "self"):
        base = module
        rest = list(segments)
        while rest and rest[0] in ("super", "self"):
            if rest[0] == "super":
                if not base:
                    return None
                base = base[:-1]
            rest = rest[1:]
    elif module + (first,) in modules:
        base, rest = module, segments
    else:
        return None
    target = base
    for seg in rest:
        if target + (seg,) in modules:
            target = target + (seg,)
            continue
        via = reexports.get((target, seg))
        if via is not None:
            target = via
        break
    return target


def edge_of(source, target):
    """(group, from, to) for a reference, or None when one contains the other."""
    common = 0
    while common < min(len(source), len(target)) and source[common] == target[common]:
        common += 1
    if common == len(source) or common == len(target):
        return None
    return source[:common], source[common], target[common]


def strongly_connected(nodes, succ):
    index, low, on_stack, stack, out = {}, {}, set(), [], []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(succ.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            out.append(sorted(component))

    for v in sorted(nodes):
        if v not in index:
            visit(v)
    return out


def elementary_cycles(component, succ):
    """Every simple cycle of a strongly connected component, each once: it starts at
    its smallest node, and the nodes after it are larger."""
    members = set(component)
    cycles = []
    for start in sorted(component):
        path = [start]

        def walk(v):
            for w in sorted(succ.get(v, ())):
                if w not in members:
                    continue
                if w == start:
                    cycles.append(list(path))
                elif w > start and w not in path:
                    path.append(w)
                    walk(w)
                    path.pop()

        walk(start)
    cycles.sort(key=lambda c: (len(c), c))
    return cycles


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if any cycle is found")
    parser.add_argument("--no-tests", action="store_true", help="leave #[cfg(test)] code out")
    parser.add_argument("--edges", action="store_true", help="also list every module edge")
    parser.add_argument("--root", default=".", help="the repository (holding src/)")
    args = parser.parse_args()
    os.chdir(args.root)

    files = []
    for directory, _, names in os.walk("src"):
        for name in sorted(names):
            if name.endswith(".rs"):
                path = os.path.join(directory, name)
                module = file_module(path)
                if module is not None:
                    files.append((path, module))
    files.sort()
    modules = {module for _, module in files}
    scanned = []
    for path, module in files:
        refs, inline, reexports = scan_file(path, module, args.no_tests)
        modules.update(inline)
        scanned.append((refs, reexports))
    # Names a module re-exports from its own submodules.
    facade = {}
    for _, reexports in scanned:
        for module, alias, segments in reexports:
            target = resolve(module, segments, modules, {})
            if target is not None and len(target) > len(module) and target[: len(module)] == module:
                facade[(module, alias)] = target

    # (group, from, to) -> [references]
    edges = defaultdict(list)
    for refs, _ in scanned:
        for ref in refs:
            target = resolve(ref.module, ref.path, modules, facade)
            if target is None:
                continue
            edge = edge_of(ref.module, target)
            if edge is not None:
                edges[edge].append(ref)

    groups = defaultdict(lambda: defaultdict(set))
    for group, a, b in edges:
        groups[group][a].add(b)

    total = 0
    report = []
    for group in sorted(groups, key=lambda g: (len(g), g)):
        succ = groups[group]
        nodes = set(succ) | {b for targets in succ.values() for b in targets}
        found = []
        for component in strongly_connected(nodes, succ):
            if len(component) > 1:
                found.extend(elementary_cycles(component, succ))
        if not found:
            continue
        title = "top-level modules of src/" if not group else "inside " + "::".join(group)
        report.append(f"{title}: {len(found)} cycle{'s' if len(found) != 1 else ''}")
        for cycle in found:
            total += 1
            report.append("  " + " -> ".join(cycle + [cycle[0]]))
            for a, b in zip(cycle, cycle[1:] + cycle[:1]):
                refs = edges[(group, a, b)]
                first = min(refs, key=lambda r: (r.test, r.file, r.line))
                tests_only = " [tests]" if all(r.test for r in refs) else ""
                more = f" (+{len(refs) - 1} more)" if len(refs) > 1 else ""
                report.append(
                    f"      {a} -> {b}: {first.file}:{first.line} {first.text}{more}{tests_only}"
                )
    if args.edges:
        for group, a, b in sorted(edges, key=lambda e: (len(e[0]), e)):
            refs = edges[(group, a, b)]
            where = "::".join(group) or "crate"
            tests_only = " [tests]" if all(r.test for r in refs) else ""
            print(f"edge in {where}: {a} -> {b} ({len(refs)}){tests_only}")
    print("\n".join(report) if report else "no import cycles")
    if report:
        edge_count = len(edges)
        print(f"{total} cycle{'s' if total != 1 else ''} ({edge_count} module edges in all)")
    return 1 if args.check and total else 0


if __name__ == "__main__":
    sys.exit(main())
