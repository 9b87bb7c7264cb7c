//! FAQ answers and handoff phrases.
//!
//! A question is written in several phrasings; a customer's message is scored against each on
//! folded words (`gia bao nhieu` is `Giá bao nhiêu?`). The score is mostly *how much of the
//! phrasing the message covers*, each word weighted by how rare it is across the FAQ (a word in
//! every question, like `shop`, says little), with a little *how much of the message the phrasing
//! explains*, so a long message that merely mentions one word scores low. Above the threshold the
//! best answer is sent; below it the bot misses.

use crate::text;
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};

/// The share of the score from the phrasing's words found in the message (the rest: the share of
/// the message's words the phrasing has).
const COVERAGE_WEIGHT: f64 = 0.8;
pub const DEFAULT_THRESHOLD: f64 = 0.6;

/// One question: several phrasings, one answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaqEntry {
    pub phrasings: Vec<String>,
    pub answer: String,
}

/// A workspace's FAQ as it is stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaqList {
    pub entries: Vec<FaqEntry>,
    /// 0–1; the best score must reach it to answer.
    #[serde(default = "default_threshold")]
    pub threshold: f64,
}

fn default_threshold() -> f64 {
    DEFAULT_THRESHOLD
}

/// The best answer for a message.
#[derive(Debug, Clone, PartialEq)]
pub struct FaqHit<'a> {
    pub entry: usize,
    pub answer: &'a str,
    pub score: f64,
}

/// An FAQ ready to match (words folded, weights computed).
#[derive(Debug, Clone)]
pub struct Faq {
    entries: Vec<FaqEntry>,
    /// Per entry, per phrasing: its distinct folded words.
    phrasings: Vec<Vec<Vec<String>>>,
    idf: HashMap<String, f64>,
    threshold: f64,
}

fn distinct(words: Vec<String>) -> Vec<String> {
    let mut seen = HashSet::new();
    words
        .into_iter()
        .filter(|w| seen.insert(w.clone()))
        .collect()
}

impl Faq {
    pub fn compile(list: &FaqList) -> Self {
        let phrasings: Vec<Vec<Vec<String>>> = list
            .entries
            .iter()
            .map(|e| {
                e.phrasings
                    .iter()
                    .map(|p| distinct(text::words(p)))
                    .filter(|w| !w.is_empty())
                    .collect()
            })
            .collect();
        // Document frequency per entry (a word repeated across one entry's phrasings counts once).
        let mut df: HashMap<String, usize> = HashMap::new();
        for entry in &phrasings {
            let words: HashSet<&String> = entry.iter().flatten().collect();
            for w in words {
                *df.entry(w.clone()).or_default() += 1;
            }
        }
        let n = phrasings.len() as f64;
        let idf = df
            .into_iter()
            .map(|(w, d)| (w, (1.0 + n / d as f64).ln()))
            .collect();
        Self {
            entries: list.entries.clone(),
            phrasings,
            idf,
            threshold: list.threshold,
        }
    }

    fn weight(&self, word: &str) -> f64 {
        // A word in no question weighs like the rarest.
        self.idf
            .get(word)
            .copied()
            .unwrap_or_else(|| (1.0 + self.phrasings.len() as f64).ln())
    }

    /// How well `message` matches one phrasing's words, 0–1.
    fn score(&self, phrasing: &[String], message: &HashSet<String>, message_len: usize) -> f64 {
        let total: f64 = phrasing.iter().map(|w| self.weight(w)).sum();
        if total <= 0.0 || message_len == 0 {
            return 0.0;
        }
        let found: Vec<&String> = phrasing.iter().filter(|w| message.contains(*w)).collect();
        let coverage = found.iter().map(|w| self.weight(w)).sum::<f64>() / total;
        let explained = found.len() as f64 / message_len as f64;
        COVERAGE_WEIGHT * coverage + (1.0 - COVERAGE_WEIGHT) * explained
    }

    /// The best-scoring entry for a message, whatever its score.
    pub fn best(&self, message: &str) -> Option<FaqHit<'_>> {
        let words: HashSet<String> = text::words(message).into_iter().collect();
        let len = words.len();
        let mut best: Option<FaqHit<'_>> = None;
        for (i, entry) in self.phrasings.iter().enumerate() {
            for p in entry {
                let score = self.score(p, &words, len);
                if best.as_ref().is_none_or(|b| score > b.score)
                    && let Some(e) = self.entries.get(i)
                {
                    best = Some(FaqHit {
                        entry: i,
                        answer: &e.answer,
                        score,
                    });
                }
            }
        }
        best
    }

    /// The answer for a message if its best score reaches the threshold.
    pub fn answer(&self, message: &str) -> Option<FaqHit<'_>> {
        self.best(message)
            .filter(|h| h.score > 0.0 && h.score >= self.threshold)
    }
}

/// Phrases by which a customer asks for a human, matched as whole folded words in a row
/// (`Cho em gặp nhân viên với` asks; `nhanvien` does not).
#[derive(Debug, Clone)]
pub struct HandoffPhrases {
    phrases: Vec<Vec<String>>,
}

/// The phrases used when a workspace sets none.
pub const DEFAULT_HANDOFF_PHRASES: [&str; 6] = [
    "gặp nhân viên",
    "nhân viên",
    "tư vấn viên",
    "người thật",
    "human",
    "agent",
];

impl Default for HandoffPhrases {
    fn default() -> Self {
        Self::new(DEFAULT_HANDOFF_PHRASES)
    }
}

impl HandoffPhrases {
    pub fn new<S: AsRef<str>>(phrases: impl IntoIterator<Item = S>) -> Self {
        Self {
            phrases: phrases
                .into_iter()
                .map(|p| text::words(p.as_ref()))
                .filter(|w| !w.is_empty())
                .collect(),
        }
    }

    /// No phrase hands off (a workspace that turned the feature off).
    pub fn none() -> Self {
        Self {
            phrases: Vec::new(),
        }
    }

    /// Whether the message asks for a human.
    pub fn asks_for_human(&self, message: &str) -> bool {
        let words = text::words(message);
        self.phrases
            .iter()
            .any(|p| words.windows(p.len()).any(|w| w == p.as_slice()))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn shop_faq() -> Faq {
        let e = |ps: &[&str], a: &str| FaqEntry {
            phrasings: ps.iter().map(|s| (*s).to_owned()).collect(),
            answer: a.into(),
        };
        Faq::compile(&FaqList {
            entries: vec![
                e(
                    &["giá bao nhiêu", "bao nhiêu tiền", "giá sản phẩm"],
                    "Dạ giá áo là 250.000đ ạ",
                ),
                e(
                    &["phí ship bao nhiêu", "ship mất bao lâu", "giao hàng"],
                    "Dạ shop giao toàn quốc 2–4 ngày, phí ship 30.000đ ạ",
                ),
                e(
                    &["shop ở đâu", "địa chỉ cửa hàng"],
                    "Dạ shop ở 12 Hàng Bạc, Hà Nội ạ",
                ),
                e(
                    &["đổi trả thế nào", "chính sách đổi trả"],
                    "Dạ shop đổi trong 7 ngày ạ",
                ),
            ],
            threshold: DEFAULT_THRESHOLD,
        })
    }

    #[test]
    fn customers_questions_find_their_answers() {
        let faq = shop_faq();
        for (message, want) in [
            ("Giá bao nhiêu vậy shop?", Some(0)),
            ("gia bao nhieu", Some(0)),
            ("cái này bao nhiêu tiền ạ", Some(0)),
            ("Ship về Đà Nẵng mất bao lâu?", Some(1)),
            ("phí ship bao nhiêu ạ", Some(1)),
            ("Shop ở đâu vậy", Some(2)),
            ("địa chỉ cửa hàng ở đâu", Some(2)),
            ("đổi trả thế nào ạ", Some(3)),
            // Nothing like any question.
            ("hôm nay trời đẹp quá", None),
            // One common word in a long message is not enough.
            (
                "em muốn hỏi là nếu em mua nhiều thì shop có tặng quà không",
                None,
            ),
            ("", None),
        ] {
            assert_eq!(
                faq.answer(message).map(|h| h.entry),
                want,
                "{message:?}: best {:?}",
                faq.best(message)
            );
        }
    }

    #[test]
    fn scores_rank_closer_phrasings_higher() {
        let faq = shop_faq();
        let exact = faq.best("giá bao nhiêu").unwrap().score;
        let wordy = faq.best("cho em hỏi giá bao nhiêu vậy ạ").unwrap().score;
        let partial = faq.best("giá").unwrap().score;
        assert!((exact - 1.0).abs() < 1e-9, "{exact}");
        assert!(
            exact > wordy && wordy > partial,
            "{exact} {wordy} {partial}"
        );
        assert!(wordy >= DEFAULT_THRESHOLD, "{wordy}");
    }

    #[test]
    fn the_threshold_decides() {
        let list = FaqList {
            entries: vec![FaqEntry {
                phrasings: vec!["giờ mở cửa".into()],
                answer: "8h–21h".into(),
            }],
            threshold: 0.95,
        };
        let strict = Faq::compile(&list);
        assert!(strict.answer("giờ mở cửa").is_some());
        assert!(strict.answer("mấy giờ shop mở cửa").is_none());
        let lenient = Faq::compile(&FaqList {
            threshold: 0.5,
            ..list
        });
        assert!(lenient.answer("mấy giờ shop mở cửa").is_some());
    }

    #[test]
    fn handoff_phrases_are_whole_folded_words() {
        let default = HandoffPhrases::default();
        for (message, asks) in [
            ("Cho em gặp nhân viên với", true),
            ("cho gap nhan vien", true),
            ("NHÂN VIÊN ơi", true),
            ("em muốn nói chuyện với tư vấn viên", true),
            ("có người thật không vậy", true),
            ("I want a human", true),
            ("talk to an agent please", true),
            ("nhanvien", false),
            ("agents of shield", false),
            ("giá bao nhiêu", false),
        ] {
            assert_eq!(default.asks_for_human(message), asks, "{message:?}");
        }
        let custom = HandoffPhrases::new(["gọi chủ shop"]);
        assert!(custom.asks_for_human("cho em gọi chủ shop"));
        assert!(!custom.asks_for_human("gặp nhân viên"));
        assert!(!HandoffPhrases::none().asks_for_human("gặp nhân viên"));
    }
}
