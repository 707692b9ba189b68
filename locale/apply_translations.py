"""Fill msgstr in a .po catalogue from a tab-separated file of `msgid<TAB>msgstr` lines.

Used when refreshing catalogues: `python locale/apply_translations.py locale/zh_Hans/LC_MESSAGES/django.po zh.tsv`.
Plural entries take the same text for every form (Chinese has one plural form). Prints what is still untranslated or only guessed (fuzzy).
"""

import sys

import polib


def main(po_path: str, *tsv_paths: str) -> None:
    table = {}
    for path in tsv_paths:
        with open(path, encoding="utf-8") as fh:
            for line in fh:
                line = line.rstrip("\n")
                if "\t" in line:
                    msgid, msgstr = line.split("\t", 1)
                    table[msgid.replace("\\n", "\n")] = msgstr.replace("\\n", "\n")
    po = polib.pofile(po_path)
    po.metadata["Plural-Forms"] = "nplurals=1; plural=0;"
    missing = []
    for entry in po:
        text = table.get(entry.msgid) or (table.get(entry.msgid_plural) if entry.msgid_plural else None)
        if entry.msgid_plural:
            singular, plural = table.get(entry.msgid), table.get(entry.msgid_plural)
            if plural or singular:
                entry.msgstr_plural = {0: plural or singular}
                entry.flags = [f for f in entry.flags if f != "fuzzy"]
            elif not entry.msgstr_plural.get(0):
                missing.append(entry.msgid)
        elif text:
            entry.msgstr = text
            entry.flags = [f for f in entry.flags if f != "fuzzy"]
        elif not entry.msgstr or "fuzzy" in entry.flags:
            # msgmerge guesses ("fuzzy") are often wrong (it matched "Analytics" to "Analyst"): list them too.
            missing.append(entry.msgid)
    po.save(po_path)
    for msgid in missing:
        print("untranslated:", msgid)


if __name__ == "__main__":
    main(*sys.argv[1:])
