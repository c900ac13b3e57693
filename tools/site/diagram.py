"""The taxonomy as an SVG diagram: classes on the left, each linked to its models.

Drawn by our own code at generate time like the plots (:mod:`tools.site.plots`); every
label is XML-escaped. It is inlined in the page, so its text and dots take their colours
from the theme through CSS classes (``atlas-model-label``, ``atlas-class-label``,
``atlas-model-dot`` in ``docs/assets/atlas.css``): no background and no hard-coded text
colour, so that it reads in the light and the dark (slate) scheme alike.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence

from tools.site.plots import FONT, PALETTE, xml_text


def taxonomy_svg(
    classes: Sequence[tuple[str, str]],
    models: Sequence[tuple[str, str, Sequence[str]]],
    *,
    href: Callable[[str], str],
    class_href: Callable[[str], str],
    added: Collection[str] = (),
) -> str:
    """The taxonomy as a diagram: classes on the left, each linked to its models.

    Args:
        classes: ``(code, name)`` of each class, in taxonomy order.
        models: ``(id, name, class codes)`` of each model.
        href: The link of a model's page, from its id.
        class_href: The link of a class's page, from its code.
        added: Codes of the classes the atlas adds to the survey's; drawn dashed and
            marked ✚, so the survey's own taxonomy stays readable as printed.

    Examples:
        >>> svg = taxonomy_svg([("LR", "Low-Rank"), ("KV", "Key/Value Sharing")],
        ...                    [("linformer", "Linformer", ["LR"])],
        ...                    href=lambda i: f"papers/{i}/", class_href=lambda c: c, added={"KV"})
        >>> 'href="papers/linformer/"' in svg, svg.count('stroke-dasharray'), "✚ KV" in svg
        (True, 1, False)
        >>> "✚ <tspan" in svg
        True
    """
    order = {code: index for index, (code, _) in enumerate(classes)}
    # Models sorted by their first class, so most edges run roughly horizontally.
    ranked = sorted(
        models, key=lambda m: (min((order.get(c, 99) for c in m[2]), default=99), m[1].lower())
    )
    row, top = 22.0, 20.0
    height = top * 2 + row * max(len(ranked), 1)
    class_gap = (height - 2 * top) / max(len(classes), 1)
    class_y = {code: top + class_gap * (index + 0.5) for index, (code, _) in enumerate(classes)}
    model_y = {m[0]: top + row * (index + 0.5) for index, m in enumerate(ranked)}
    colour = {code: PALETTE[index % len(PALETTE)] for index, (code, _) in enumerate(classes)}
    box_right, model_left, width = 250.0, 470.0, 720.0
    body: list[str] = []
    for id, _, codes in ranked:
        for code in codes:
            if code not in class_y:
                continue
            y0, y1 = class_y[code], model_y[id]
            body.append(
                f'<path d="M{box_right},{y0:.1f} C{box_right + 110},{y0:.1f} '
                f'{model_left - 110},{y1:.1f} {model_left - 6},{y1:.1f}" fill="none" '
                f'stroke="{colour[code]}" stroke-opacity="0.55" stroke-width="1.5"/>'
            )
    for code, name in classes:
        y = class_y[code]
        dashed = ' stroke-dasharray="5 3"' if code in added else ""
        mark = "✚ " if code in added else ""
        body.append(
            f'<a href="{xml_text(class_href(code))}"><rect x="10" y="{y - 15:.1f}" '
            f'width="{box_right - 10}" height="30" rx="6" fill="{colour[code]}" '
            f'fill-opacity="0.15" stroke="{colour[code]}"{dashed}/>'
            f'<text x="22" y="{y + 5:.1f}" font-size="14" class="atlas-class-label">'
            f'{mark}<tspan font-weight="700">{xml_text(code)}</tspan> · {xml_text(name)}'
            "</text></a>"
        )
    for id, name, _ in ranked:
        y = model_y[id]
        body.append(
            f'<a href="{xml_text(href(id))}"><circle cx="{model_left - 4}" cy="{y:.1f}" r="3" '
            f'class="atlas-model-dot"/><text x="{model_left + 4}" y="{y + 4.5:.1f}" '
            f'font-size="13" class="atlas-model-label">{xml_text(name)}</text></a>'
        )
    label = "The taxonomy: classes and their models"
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width:g} {height:g}" '
        f'width="{width:g}" height="{height:g}" role="img" aria-label="{xml_text(label)}" '
        f'style="{FONT}">' + "".join(body) + "</svg>\n"
    )
