//! The built-in paraphraser used when no service is configured: deterministic
//! phrase and word substitution for English and French, keeping case and
//! punctuation. Not a language model — enough to show a real change of wording
//! on ordinary sentences, and always the same answer for the same input.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Language {
    English,
    French,
}

const FR_STOPWORDS: &[&str] = &[
    "le", "la", "les", "de", "des", "du", "est", "et", "en", "un", "une", "que", "qui", "pour", "dans", "pas", "sur",
    "nous", "vous", "ce", "cette", "sont", "avec", "au", "aux", "il", "elle", "ne", "mais", "comment",
];
const EN_STOPWORDS: &[&str] = &[
    "the", "is", "of", "and", "to", "a", "in", "that", "it", "for", "on", "are", "with", "we", "you", "this", "be",
    "how", "was", "not", "but", "at", "by", "from",
];

/// Multi-word rewrites, tried before single words (lowercase, space separated).
const EN_PHRASES: &[(&str, &str)] = &[
    ("at the moment", "currently"),
    ("right now", "at present"),
    ("a lot of", "plenty of"),
    ("lots of", "plenty of"),
    ("in order to", "to"),
    ("point of contention", "matter of dispute"),
    ("how to", "the way to"),
    ("as well as", "along with"),
    ("make money", "earn an income"),
    ("a little", "slightly"),
];
const EN_WORDS: &[(&str, &str)] = &[
    ("about", "regarding"), ("also", "additionally"), ("always", "constantly"), ("answer", "reply"),
    ("bad", "poor"), ("because", "since"), ("begin", "commence"), ("big", "large"), ("build", "construct"),
    ("buy", "purchase"), ("choose", "select"), ("create", "produce"), ("developers", "engineers"),
    ("difficult", "challenging"), ("easy", "simple"), ("end", "finish"), ("enough", "sufficient"),
    ("everything", "all of it"), ("fast", "rapid"), ("find", "discover"), ("get", "obtain"),
    ("goal", "aim"), ("good", "great"), ("great", "excellent"), ("hard", "difficult"), ("help", "assist"),
    ("however", "nevertheless"), ("idea", "notion"), ("important", "significant"), ("job", "task"),
    ("keep", "retain"), ("main", "primary"), ("make", "create"), ("many", "numerous"), ("maybe", "perhaps"),
    ("money", "funds"), ("need", "require"), ("often", "frequently"), ("people", "individuals"),
    ("problem", "issue"), ("productive", "efficient"), ("question", "query"), ("quick", "swift"),
    ("quickly", "rapidly"), ("show", "demonstrate"), ("small", "little"), ("start", "begin"),
    ("think", "believe"), ("try", "attempt"), ("use", "employ"), ("very", "extremely"), ("want", "wish"),
    ("whole", "entire"), ("world", "globe"), ("earn", "make"), ("trying", "attempting"), ("using", "employing"),
    ("building", "constructing"), ("getting", "obtaining"), ("making", "creating"), ("helps", "assists"),
    ("uses", "employs"), ("shows", "demonstrates"), ("needs", "requires"), ("problems", "issues"),
    ("ideas", "notions"), ("tools", "instruments"), ("tool", "instrument"), ("simple", "straightforward"),
];
const FR_PHRASES: &[(&str, &str)] = &[
    ("point de discorde", "sujet de désaccord"),
    ("en ce moment", "actuellement"),
    ("gagner beaucoup d'argent", "s'enrichir considérablement"),
    ("beaucoup d'argent", "énormément d'argent"),
    ("savoir comment", "déterminer comment"),
    ("beaucoup de", "énormément de"),
    ("il y a", "on trouve"),
    ("tout le monde", "chacun"),
    ("à cause de", "en raison de"),
    ("par exemple", "notamment"),
    ("c'est-à-dire", "autrement dit"),
];
const FR_WORDS: &[(&str, &str)] = &[
    ("aider", "assister"), ("aussi", "également"), ("acheter", "acquérir"), ("besoin", "nécessité"),
    ("bon", "excellent"), ("bonne", "excellente"), ("choisir", "sélectionner"), ("chose", "élément"),
    ("choses", "éléments"), ("commencer", "débuter"), ("construire", "bâtir"), ("créer", "concevoir"),
    ("difficile", "ardu"), ("développeurs", "programmeurs"), ("essayer", "tenter"), ("facile", "aisé"),
    ("finir", "terminer"), ("gagner", "remporter"), ("garder", "conserver"), ("gens", "personnes"),
    ("grand", "vaste"), ("grande", "vaste"), ("idée", "notion"), ("important", "essentiel"),
    ("importante", "essentielle"), ("mais", "toutefois"), ("maintenant", "désormais"), ("mauvais", "médiocre"),
    ("montrer", "démontrer"), ("objectif", "but"), ("obtenir", "recevoir"), ("penser", "estimer"),
    ("petit", "modeste"), ("petite", "modeste"), ("principal", "majeur"), ("problème", "souci"),
    ("problèmes", "soucis"), ("productifs", "efficaces"), ("rapide", "prompt"), ("rapidement", "vite"),
    ("souvent", "fréquemment"), ("toujours", "constamment"), ("travail", "labeur"), ("trouver", "découvrir"),
    ("très", "extrêmement"), ("utiliser", "employer"), ("vouloir", "souhaiter"), ("outils", "instruments"),
    ("question", "interrogation"), ("réponse", "réplique"), ("simple", "élémentaire"), ("entier", "complet"),
];

pub fn detect(text: &str) -> Language {
    let words: Vec<String> = words_lower(text);
    let score = |list: &[&str]| words.iter().filter(|w| list.contains(&w.as_str())).count();
    let accents = text.chars().filter(|c| "éèêàùçâîôûëïœ".contains(*c)).count();
    if score(FR_STOPWORDS) + accents > score(EN_STOPWORDS) { Language::French } else { Language::English }
}

fn words_lower(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphabetic()).filter(|w| !w.is_empty()).map(str::to_lowercase).collect()
}

/// A piece of text: a word (letters only) or anything between words.
#[derive(Debug)]
enum Piece<'a> {
    Word(&'a str),
    Other(&'a str),
}

fn pieces(text: &str) -> Vec<Piece<'_>> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut in_word = None;
    for (i, c) in text.char_indices() {
        let is_word = c.is_alphabetic();
        match in_word {
            Some(w) if w == is_word => {}
            Some(w) => {
                out.push(if w { Piece::Word(&text[start..i]) } else { Piece::Other(&text[start..i]) });
                start = i;
                in_word = Some(is_word);
            }
            None => in_word = Some(is_word),
        }
    }
    if let Some(w) = in_word {
        out.push(if w { Piece::Word(&text[start..]) } else { Piece::Other(&text[start..]) });
    }
    out
}

fn match_case(original: &str, replacement: &str) -> String {
    let mut chars = original.chars();
    let first_upper = chars.next().is_some_and(char::is_uppercase);
    let all_upper = original.chars().count() > 1 && original.chars().all(|c| !c.is_lowercase());
    if all_upper {
        replacement.to_uppercase()
    } else if first_upper {
        let mut r = replacement.chars();
        r.next().map(|f| f.to_uppercase().chain(r).collect()).unwrap_or_default()
    } else {
        replacement.to_owned()
    }
}

/// Paraphrase `text`. The same input always gives the same output.
pub fn paraphrase(text: &str) -> String {
    let (phrases, words) = match detect(text) {
        Language::English => (EN_PHRASES, EN_WORDS),
        Language::French => (FR_PHRASES, FR_WORDS),
    };
    let parts = pieces(text);
    let mut out = String::with_capacity(text.len() + 16);
    let mut i = 0;
    'outer: while i < parts.len() {
        if let Piece::Word(_) = parts[i] {
            // Longest phrase first: phrases are matched on the lowercase text of the
            // next pieces, separators included (so "d'argent" matches "d'argent").
            for (phrase, replacement) in phrases {
                let mut consumed = String::new();
                let mut j = i;
                while j < parts.len() && consumed.chars().count() < phrase.chars().count() {
                    consumed.push_str(match parts[j] {
                        Piece::Word(w) | Piece::Other(w) => w,
                    });
                    j += 1;
                }
                if consumed.to_lowercase() == *phrase {
                    out.push_str(&match_case(&consumed, replacement));
                    i = j;
                    continue 'outer;
                }
            }
        }
        match parts[i] {
            Piece::Word(w) => {
                let lower = w.to_lowercase();
                match words.iter().find(|(from, _)| *from == lower) {
                    Some((_, to)) => out.push_str(&match_case(w, to)),
                    None => out.push_str(w),
                }
            }
            Piece::Other(o) => out.push_str(o),
        }
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tutorial_sentence_changes_wording() {
        let src = "Le point de discorde en ce moment est de savoir comment gagner beaucoup d'argent.";
        assert_eq!(detect(src), Language::French);
        assert_eq!(paraphrase(src), "Le sujet de désaccord actuellement est de déterminer comment s'enrichir considérablement.");
    }

    #[test]
    fn english_sentences_change_and_keep_case_and_punctuation() {
        let src = "Developers always try to build tools that help people, because it is important!";
        assert_eq!(detect(src), Language::English);
        assert_eq!(
            paraphrase(src),
            "Engineers constantly attempt to construct instruments that assist individuals, since it is significant!"
        );
        assert_eq!(paraphrase("RIGHT NOW we need MONEY."), "AT PRESENT we require FUNDS.");
    }

    #[test]
    fn french_sentences_change() {
        let src = "Il y a souvent un petit problème avec les outils, mais les développeurs trouvent une réponse.";
        let out = paraphrase(src);
        assert_ne!(out, src);
        assert!(out.starts_with("On trouve fréquemment un modeste souci avec les instruments, toutefois"), "{out}");
    }

    #[test]
    fn deterministic_and_total() {
        for s in ["", " ", "?!", "123", "é", "a", "Ünïcödé wörds 🚀 here", "in order", "point de"] {
            assert_eq!(paraphrase(s), paraphrase(s));
        }
        assert_eq!(paraphrase("123 !?"), "123 !?");
    }
}
