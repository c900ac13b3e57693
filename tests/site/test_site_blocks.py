"""The Markdown block collector finds blocks wherever Material lets people put them."""

from __future__ import annotations

from pathlib import Path

from tools.site.blocks import collect, python_blocks

PAGE = '''# Title

```python
a = 1
```

```py title="with a title" linenums="1" hl_lines="2"
b = 2
```

``` { .python title="attribute list" }
c = 3
```

!!! note "In an admonition"

    ```python
    d = 4
    ```

???+ tip "Collapsible"

    ~~~python
    e = 5
    ~~~

=== "Tab one"

    ```python
    f = 6
    ```

=== "Tab two"

    !!! example

        ````python
        g = """```"""
        ````

```bash
echo not python
```

```
no language
```
'''


def test_finds_every_python_block() -> None:
    blocks = python_blocks(PAGE)
    assert [b.code.strip() for b in blocks] == [
        "a = 1",
        "b = 2",
        "c = 3",
        "d = 4",
        "e = 5",
        "f = 6",
        'g = """```"""',
    ]
    assert [b.title for b in blocks][1:3] == ["with a title", "attribute list"]


def test_blocks_run_in_their_own_namespace() -> None:
    for block in python_blocks(PAGE):
        exec(compile(block.code, "page", "exec"), {})


def test_collect_follows_snippet_includes(tmp_path: Path) -> None:
    (tmp_path / "part.inc").write_text("```python\nx = 1\n```\n", encoding="utf-8")
    (tmp_path / "index.md").write_text('# Home\n\n--8<-- "part.inc"\n', encoding="utf-8")
    assert [len(blocks) for blocks in collect(tmp_path).values()] == [1]
