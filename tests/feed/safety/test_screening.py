"""Crisis and medication screening: measured on labelled posts in English and Spanish, and held to
hyperbole, negation, misspelling, accents, inflection, word boundaries, phrase-file errors and speed.

The labelled sets (labelled_en.txt, labelled_es.txt) were written from what members write, after
the phrase lists and apart from them. Measured before any tuning, crisis recall was 0.82 (en) and
0.85 (es), precision 0.96 and 0.95; the lists were then widened by kinds of phrasing, not by
sentence. A further 40 sentences written after that (the last section of each file) scored recall
0.80 / 0.90 and precision 0.94 / 0.95 when first run: the better estimate for unseen text.
"""

from __future__ import annotations

import ast
import dataclasses
import random
import re
import time
from pathlib import Path

import pytest

from feed.safety import screening
from feed.safety.screening import PHRASES, PhraseError, Screener, Verdict, read_phrases, screen

HERE = Path(__file__).parent
LANGUAGES = ("en", "es")


def labelled(language: str) -> list[tuple[frozenset[str], str]]:
    """(labels, text) from labelled_<language>.txt; labels is a subset of {crisis, medication}."""
    rows = []
    for number, line in enumerate((HERE / f"labelled_{language}.txt").read_text("utf-8").splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        label, separator, text = line.partition("|")
        labels = frozenset(label.strip().split("+")) - {"none"}
        assert separator and text.strip() and labels <= {"crisis", "medication"}, f"line {number}: {line}"
        rows.append((labels, text.strip()))
    return rows


def measure(language: str, kind: str) -> tuple[float, float, list[str], list[str]]:
    """Recall, precision, missed texts and wrongly flagged texts for one kind of label."""
    missed, wrong = [], []
    found = 0
    for labels, text in labelled(language):
        flagged = getattr(screen(text), kind)
        if kind in labels and flagged:
            found += 1
        elif kind in labels:
            missed.append(text)
        elif flagged:
            wrong.append(text)
    recall = found / (found + len(missed))
    precision = found / (found + len(wrong)) if found + len(wrong) else 1.0
    return recall, precision, missed, wrong


# --- the labelled sets -------------------------------------------------------------------


@pytest.mark.parametrize("language", LANGUAGES)
def test_each_labelled_set_has_at_least_seventy_crisis_and_seventy_other_posts(language: str) -> None:
    rows = labelled(language)
    positive = sum("crisis" in labels for labels, _ in rows)
    assert positive >= 70
    assert len(rows) - positive >= 70
    assert sum("medication" in labels for labels, _ in rows) >= 20


@pytest.mark.parametrize("language", LANGUAGES)
def test_crisis_recall_and_precision_on_the_labelled_set(language: str) -> None:
    recall, precision, missed, wrong = measure(language, "crisis")
    figures = f"crisis {language}: recall {recall:.2f} precision {precision:.2f}"
    print(f"\n{figures}  missed {missed}  wrongly flagged {wrong}")
    assert recall >= 0.95 and precision >= 0.90, f"{figures}; missed {missed}; wrongly flagged {wrong}"


@pytest.mark.parametrize("language", LANGUAGES)
def test_medication_recall_and_precision_on_the_labelled_set(language: str) -> None:
    recall, precision, missed, wrong = measure(language, "medication")
    figures = f"medication {language}: recall {recall:.2f} precision {precision:.2f}"
    print(f"\n{figures}  missed {missed}  wrongly flagged {wrong}")
    assert recall >= 0.90 and precision >= 0.90, f"{figures}; missed {missed}; wrongly flagged {wrong}"


# --- what must not be flagged ---------------------------------------------------------------


@pytest.mark.parametrize("text", [
    "this hill killed me",
    "I'm dying to see the new film",
    "I could kill for a coffee",
    "my feet are killing me",
    "I nearly killed myself laughing",
    "This cake is to die for",
    "I cut myself shaving this morning",
    "I'm going to take my life back, one walk at a time",
    "Esta cuesta me mató",
    "Me muero de risa",
    "Me mato a trabajar toda la semana",
    "Mataría por un café",
    "Me corté el pelo",
])
def test_everyday_hyperbole_is_not_a_crisis(text: str) -> None:
    assert screen(text) == Verdict(crisis=False, medication=False)


@pytest.mark.parametrize("text", [
    "my legs are burning again on this hill",
    "squats are burning my legs",
    "I started burning more calories",
    "I'm back to cutting carbs",
    "We walked into the sea up to our knees",
    "Esta es una despedida de soltera, ¡qué fiesta!",
    "El entrenamiento de hoy me mató",
])
def test_talk_of_exercise_and_parties_is_not_self_harm(text: str) -> None:
    assert not screen(text).crisis


@pytest.mark.parametrize("text", [
    "I would never hurt myself",
    "I'm not suicidal, just tired",
    "I don't want to die, I want to sleep",
    "I used to self-harm, 200 days clean now",
    "No quiero morir",
    "Nunca me haría daño",
    "No tengo pensamientos suicidas",
])
def test_a_crisis_phrase_right_after_a_negation_is_set_aside(text: str) -> None:
    assert not screen(text).crisis


@pytest.mark.parametrize("text", [
    "I don't want to live anymore",
    "I never want to wake up again",
    "there's no reason to live",
    "Ya no quiero vivir",
    "No tengo ganas de vivir",
])
def test_a_phrase_whose_meaning_needs_its_no_still_signals_crisis(text: str) -> None:
    assert screen(text).crisis


@pytest.mark.parametrize("text", [
    "No, I want to die",
    "I'm not okay. I want to die",
    "I'm not okay\nI want to die",
    "No. Quiero morirme",
])
def test_punctuation_or_a_new_line_stops_a_negation(text: str) -> None:
    assert screen(text).crisis


@pytest.mark.parametrize("text", [
    "I'm so proud of myself",  # "of", not "off myself"
    "Walked 5 kms today",  # kilometres, not "kill myself"
    "That's odd",  # "odd" is not "OD"
    "I overdid it and now I'm sore",
    "Don't overdo it on the hills",
    "the housing subsidy came through",  # one letter from "suicid"
    "I watched Suicide Squad again",
])
def test_words_only_count_whole_and_near_words_are_not_mistaken(text: str) -> None:
    assert not screen(text).crisis


# --- what must be flagged however it is written -------------------------------------------


@pytest.mark.parametrize("text", [
    "sucide", "suicde", "suiside", "suicidle", "sucidal again",
    "kil myself", "i want to kil my self", "kill myslef",
    "quitarme la vida", "kitarme la vida", "qitarme la vida",
    "suisidio", "sucidio", "me kiero morir",
])
def test_common_misspellings_are_caught(text: str) -> None:
    assert screen(text).crisis


@pytest.mark.parametrize("text", [
    "suicidio", "suicídio", "SUICIDIO", "Suicídio", "suici\u0301dio",  # the last with a combining accent
    "ＳＵＩＣＩＤＥ",  # full-width, folded by NFKC
    "QUIERO MORIRME", "quiero morírme",
    "I DON’T WANT TO LIVE ANYMORE",  # a typographic apostrophe
])
def test_case_accents_and_compatibility_forms_do_not_matter(text: str) -> None:
    assert screen(text).crisis


@pytest.mark.parametrize("text", [
    "I want to kill myself", "I keep killing myself slowly", "I nearly killed myself last night",
    "suicide", "I feel suicidal", "suicidality is back",
    "voy a matarme", "me voy a matar", "esta noche me mato", "me quiero suicidar", "me suicido",
])
def test_simple_inflections_are_caught(text: str) -> None:
    assert screen(text).crisis


@pytest.mark.parametrize("text", [
    "kill...myself", "kill - myself", "kill\nmyself", "kill   myself", "kiiill myself",
    "self-harm", "self harm", "selfharm", "quiero, morirme",
])
def test_words_may_be_separated_by_any_spaces_or_punctuation(text: str) -> None:
    assert screen(text).crisis


# --- medication ---------------------------------------------------------------------------


@pytest.mark.parametrize("text", [
    "I stopped taking my meds",
    "skipping my pills this week",
    "thinking of coming off lithium",
    "you don't need your antipsychotic, just walk more",
    "voy a dejar la medicación",
    "me salté la dosis de anoche",
    "quiero bajar la dosis yo sola",
])
def test_changing_stopping_or_skipping_medication_gets_a_care_note(text: str) -> None:
    verdict = screen(text)
    assert verdict.medication and not verdict.crisis


@pytest.mark.parametrize("text", [
    "I took my medication",  # taking it as prescribed is not matched, by design
    "Me tomé la medicación",
    "Does anyone take olanzapine at night?",
    "I would never stop taking my meds",  # negations work here too
])
def test_taking_or_asking_about_medication_gets_no_note(text: str) -> None:
    assert not screen(text).medication


@pytest.mark.parametrize("text", [
    "Guardar cambios", "Cambiar esta meta", "¿Olvidaste tu contraseña?", "Submit",
    "Se me olvidó tomar agua", "I changed my walking goal", "I stopped at the pharmacy on my walk",
])
def test_a_verb_of_change_without_a_medicine_gets_no_note(text: str) -> None:
    assert not screen(text).medication


def test_crisis_and_medication_are_found_together_and_named_for_moderators() -> None:
    verdict = screen("I stopped my meds because I want to die")
    assert verdict.crisis and verdict.medication
    assert [match.split(":")[0] for match in verdict.matches] == ["crisis_en", "medication_en"]
    assert "crisis_en: want|wanna|wanted|wanting [to] die|dead|be_dead" in verdict.matches


def test_a_verdict_is_frozen_and_empty_text_flags_nothing() -> None:
    verdict = screen("")
    assert verdict == Verdict(crisis=False, medication=False, matches=())
    assert screen("   \n ") == verdict
    with pytest.raises(dataclasses.FrozenInstanceError):
        verdict.crisis = True  # type: ignore[misc]


# --- the phrase files and the module ------------------------------------------------------


def test_the_shipped_phrase_files_compile_once() -> None:
    assert screening.default_screener() is screening.default_screener()
    kinds = {path.stem.split("_")[0] for path in PHRASES.glob("*.txt")}
    assert kinds == {"crisis", "medication", "benign", "negation"}


def test_a_new_language_is_a_new_file(tmp_path: Path) -> None:
    (tmp_path / "crisis_fr.txt").write_text("# Français\nje veux mourir|crever\n", "utf-8")
    (tmp_path / "negation_fr.txt").write_text("ne|jamais [pas]\n", "utf-8")
    french = Screener.from_folder(tmp_path)
    assert french.screen("Je veux mourir.").matches == ("crisis_fr: je veux mourir|crever",)
    assert not french.screen("je ne veux mourir").crisis


@pytest.mark.parametrize(("line", "complaint"), [
    ("kill @someone", "@someone is not defined"),
    ("hurt~ myself", "~ is for words of five letters or more"),
    ("want [to die]", "[ ] holds one word or choice"),
    ("... myself", "... goes between two words"),
    ("[maybe]", "a phrase needs a word outside [ ]"),
    ("kill||hurt myself", "an empty choice"),
    ("self-harm", "is not a word"),
    ("@pills = pills [meds]", "a named choice reads"),
])
def test_a_bad_phrase_line_is_refused_with_its_file_and_line(tmp_path: Path, line: str,
                                                                 complaint: str) -> None:
    (tmp_path / "crisis_xx.txt").write_text(f"# a note\nwant to die\n{line}\n", "utf-8")
    with pytest.raises(PhraseError, match=r"crisis_xx\.txt:3") as refused:
        Screener.from_folder(tmp_path)
    assert complaint in str(refused.value)


def test_a_folder_without_crisis_phrases_is_refused_rather_than_screening_nothing(tmp_path: Path) -> None:
    (tmp_path / "benign_en.txt").write_text("kill* time\n", "utf-8")
    with pytest.raises(PhraseError, match="no crisis phrases"):
        Screener.from_folder(tmp_path)
    with pytest.raises(PhraseError, match=r"<kind>_<language>\.txt"):
        read_phrases(tmp_path / "phrases_en.txt")


def test_screening_is_pure_python_with_no_flask_database_or_app_imports() -> None:
    tree = ast.parse(Path(screening.__file__).read_text("utf-8"))
    imported = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
                for alias in node.names}
    imported |= {str(node.module).split(".")[0] for node in ast.walk(tree)
                 if isinstance(node, ast.ImportFrom)}
    assert imported <= {"__future__", "bisect", "collections", "dataclasses", "functools", "pathlib",
                        "re", "typing", "unicodedata"}


def test_screening_a_thousand_posts_of_a_thousand_characters() -> None:
    re.purge()  # compile from nothing, as a fresh worker does
    started = time.perf_counter()
    Screener.from_folder(PHRASES)
    compiled = time.perf_counter() - started
    rows = [row for language in LANGUAGES for row in labelled(language)]
    others = [text for labels, text in rows if not labels]  # hard cases: hyperbole, negations
    crisis = [text for labels, text in rows if "crisis" in labels]
    chooser = random.Random(6)

    def posts(crisis_share: float) -> list[str]:
        made = []
        for _ in range(1000):
            post = ""
            while len(post) < 1000:
                pool = crisis if chooser.random() < crisis_share else others
                post += chooser.choice(pool) + chooser.choice([" ", ". ", "\n", ", "])
            made.append(post[:1000])
        return made

    screening.default_screener()
    report = []
    for name, share in (("of the labelled non-crisis sentences, a crisis one in some posts", 0.005),
                        ("half the sentences crisis", 0.5)):
        batch = posts(share)
        started = time.perf_counter()
        flagged = sum(screen(post).crisis for post in batch)
        elapsed = time.perf_counter() - started
        report.append(f"{elapsed * 1000:.0f} ms {name} ({flagged} flagged)")
        assert flagged > 0  # the time is printed, not asserted
    print(f"\nscreening 1,000 posts of 1,000 characters: {'; '.join(report)}; "
          f"compiling the phrase files: {compiled * 1000:.0f} ms")
