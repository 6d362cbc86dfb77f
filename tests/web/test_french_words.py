"""Every French string of the pages and apps names people without assuming a gender
(docs/french.md, "A page never assumes a person's gender")."""

import re
from pathlib import Path

from babel.messages.pofile import read_po

CATALOGUE = Path("server/web/translations/fr/LC_MESSAGES/messages.po")

# A role noun alone is masculine; only the full doublets are allowed (rule 2).
DOUBLETS = re.compile(
    r"chauffeurs et chauffeuses|chauffeuses et chauffeurs|chauffeur ou chauffeuse"
    r"|passagers et passagères|passager ou passagère",
    re.IGNORECASE,
)
GENDERED = re.compile(
    r"\b(chauffeurs?|passagers?|clients?)\b"
    # A person speaking of themselves, or spoken to, with a participle that takes a gender.
    r"|\b(je suis arrivé|connecté)\b",
    re.IGNORECASE,
)


def gendered_words(text: str) -> list[str]:
    return [match.group(0) for match in GENDERED.finditer(DOUBLETS.sub("", text))]


def test_the_rule_sees_a_masculine_role_noun_and_lets_a_doublet_pass() -> None:
    assert gendered_words("Votre chauffeur est là") == ["chauffeur"]
    assert gendered_words("Le passager a annulé") == ["passager"]
    assert gendered_words("la coopérative des chauffeurs et chauffeuses") == []
    assert gendered_words("La personne passagère a annulé") == []
    assert gendered_words("Le client a annulé") == ["client"]
    assert gendered_words("Je suis arrivé") == ["Je suis arrivé"]
    assert gendered_words("Connecté\u00a0: Amira") == ["Connecté"]
    assert gendered_words("Je suis sur place") == []


def test_no_french_string_names_a_driver_or_rider_with_a_masculine_noun() -> None:
    with CATALOGUE.open("rb") as handle:
        catalogue = read_po(handle, locale="fr")
    found = []
    for message in catalogue:
        if not message.id:
            continue
        strings = [message.string] if isinstance(message.string, str) else [*(message.string or ())]
        for text in strings:
            if words := gendered_words(text or ""):
                found.append(f"{message.id!r}: {text!r} ({', '.join(words)})")
    assert not found, "\n".join(found)
