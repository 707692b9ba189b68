"""Fill msgstr in a .po catalogue from a tab-separated file of `msgid<TAB>msgstr` lines, or
`msgctxt<TAB>msgid<TAB>msgstr` for a string marked with a context (`{% trans "When" context "rule
trigger" %}`, `pgettext`), which never falls back to the context-free translation.

Used when refreshing catalogues: `python locale/apply_translations.py locale/zh_Hans/LC_MESSAGES/django.po zh.tsv`.
Plural entries take the same text for every form (Chinese has one plural form). Prints what is still untranslated or only guessed (fuzzy).
"""

import sys

import polib


def main(po_path: str, *tsv_paths: str) -> None:
    table: dict[tuple[str | None, str], str] = {}
    for path in tsv_paths:
        with open(path, encoding="utf-8") as fh:
            for line in fh:
                parts = line.rstrip("\n").replace("\\n", "\n").split("\t")
                if len(parts) == 2:
                    table[(None, parts[0])] = parts[1]
                elif len(parts) == 3:
                    table[(parts[0], parts[1])] = parts[2]
    po = polib.pofile(po_path)
    po.metadata["Plural-Forms"] = "nplurals=1; plural=0;"
    missing = []
    for entry in po:
        ctx = entry.msgctxt or None
        label = f"[{ctx}] {entry.msgid}" if ctx else entry.msgid
        if entry.msgid_plural:
            singular, plural = table.get((ctx, entry.msgid)), table.get((ctx, entry.msgid_plural))
            if plural or singular:
                entry.msgstr_plural = {0: plural or singular}
                entry.flags = [f for f in entry.flags if f != "fuzzy"]
            elif not entry.msgstr_plural.get(0) or "fuzzy" in entry.flags:
                missing.append(label)
            continue
        text = table.get((ctx, entry.msgid))
        if text:
            entry.msgstr = text
            entry.flags = [f for f in entry.flags if f != "fuzzy"]
        elif not entry.msgstr or "fuzzy" in entry.flags:
            # msgmerge guesses ("fuzzy") are often wrong (it matched "Analytics" to "Analyst"): list them too.
            missing.append(label)
    po.save(po_path)
    for msgid in missing:
        print("untranslated:", msgid)


if __name__ == "__main__":
    main(*sys.argv[1:])
