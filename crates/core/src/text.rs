//! Text as Switchboard compares it: lower-cased, Vietnamese (and other Latin) diacritics folded,
//! `đ`/`Đ` to `d`, cut into words. One folding for the conversation search's walk (the store),
//! keyword flows and FAQ answers, so `khach` finds `Khách` everywhere alike.

use std::collections::HashMap;
use std::sync::OnceLock;

/// Latin letters with diacritics (both cases, Vietnamese included) and the lower-case ASCII
/// letter each folds to, position by position. The store's indexes fold the same letters their
/// own way: SQLite's FTS5 tokenizer removes diacritics itself (all but `đ`, which its index is
/// given folded: migration 8), PostgreSQL decomposes and drops the marks (`postgres::folded_sql`).
pub const FOLD_FROM: &str = "ÀÁÂÃÄÅÇÈÉÊËÌÍÎÏÑÒÓÔÕÖÙÚÛÜÝàáâãäåçèéêëìíîïñòóôõöùúûüýÿĀāĂăĄąĆćĈĉĊċČčĎďĒēĔĕĖėĘęĚěĜĝĞğĠġĢģĤĥĨĩĪīĬĭĮįİĴĵĶķĹĺĻļĽľŃńŅņŇňŌōŎŏŐőŔŕŖŗŘřŚśŜŝŞşŠšŢţŤťŨũŪūŬŭŮůŰűŲųŴŵŶŷŸŹźŻżŽžƠơƯưǍǎǏǐǑǒǓǔǕǖǗǘǙǚǛǜǞǟǠǡǦǧǨǩǪǫǬǭǰǴǵǸǹǺǻȀȁȂȃȄȅȆȇȈȉȊȋȌȍȎȏȐȑȒȓȔȕȖȗȘșȚțȞȟȦȧȨȩȪȫȬȭȮȯȰȱȲȳḀḁḂḃḄḅḆḇḈḉḊḋḌḍḎḏḐḑḒḓḔḕḖḗḘḙḚḛḜḝḞḟḠḡḢḣḤḥḦḧḨḩḪḫḬḭḮḯḰḱḲḳḴḵḶḷḸḹḺḻḼḽḾḿṀṁṂṃṄṅṆṇṈṉṊṋṌṍṎṏṐṑṒṓṔṕṖṗṘṙṚṛṜṝṞṟṠṡṢṣṤṥṦṧṨṩṪṫṬṭṮṯṰṱṲṳṴṵṶṷṸṹṺṻṼṽṾṿẀẁẂẃẄẅẆẇẈẉẊẋẌẍẎẏẐẑẒẓẔẕẖẗẘẙẠạẢảẤấẦầẨẩẪẫẬậẮắẰằẲẳẴẵẶặẸẹẺẻẼẽẾếỀềỂểỄễỆệỈỉỊịỌọỎỏỐốỒồỔổỖỗỘộỚớỜờỞởỠỡỢợỤụỦủỨứỪừỬửỮữỰựỲỳỴỵỶỷỸỹđĐ";
pub const FOLD_TO: &str = "aaaaaaceeeeiiiinooooouuuuyaaaaaaceeeeiiiinooooouuuuyyaaaaaaccccccccddeeeeeeeeeegggggggghhiiiiiiiiijjkkllllllnnnnnnoooooorrrrrrssssssssttttuuuuuuuuuuuuwwyyyzzzzzzoouuaaiioouuuuuuuuuuaaaaggkkoooojggnnaaaaaaeeeeiiiioooorrrruuuusstthhaaeeooooooooyyaabbbbbbccddddddddddeeeeeeeeeeffgghhhhhhhhhhiiiikkkkkkllllllllmmmmmmnnnnnnnnoooooooopppprrrrrrrrssssssssssttttttttuuuuuuuuuuvvvvwwwwwwwwwwxxxxyyzzzzzzhtwyaaaaaaaaaaaaaaaaaaaaaaaaeeeeeeeeeeeeeeeeiiiioooooooooooooooooooooooouuuuuuuuuuuuuuyyyyyyyydd";

/// A combining mark (U+0300–U+036F): text typed in decomposed form (`a` + U+0301) carries its
/// diacritics this way; folding drops them, so decomposed and precomposed text compare equal.
const fn is_combining_mark(c: char) -> bool {
    matches!(c, '\u{0300}'..='\u{036f}')
}

/// `c` lower-cased and without diacritics (nothing for a combining mark).
pub fn fold_char(c: char) -> impl Iterator<Item = char> {
    static FOLD: OnceLock<HashMap<char, char>> = OnceLock::new();
    let fold = FOLD.get_or_init(|| FOLD_FROM.chars().zip(FOLD_TO.chars()).collect());
    c.to_lowercase()
        .filter(|l| !is_combining_mark(*l))
        .map(|l| {
            if l.is_ascii() {
                l
            } else {
                fold.get(&l).copied().unwrap_or(l)
            }
        })
}

/// `text` lower-cased and folded, everything else (spaces, punctuation) kept as it is.
pub fn fold(text: &str) -> String {
    text.chars().flat_map(fold_char).collect()
}

/// The words of `text`: cut at anything that is not a letter or a digit, lower-cased, diacritics
/// removed. A combining mark stays inside its word.
pub fn words(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut word = String::new();
    for c in text.chars() {
        if c.is_alphanumeric() {
            word.extend(fold_char(c));
        } else if is_combining_mark(c) {
            // Dropped, and the word goes on.
        } else if !word.is_empty() {
            out.push(std::mem::take(&mut word));
        }
    }
    if !word.is_empty() {
        out.push(word);
    }
    out
}

/// The words of `text` lower-cased but with their diacritics kept (for matching that must tell
/// `giá` from `gia`).
pub fn lower_words(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut word = String::new();
    for c in text.chars() {
        if c.is_alphanumeric() || (is_combining_mark(c) && !word.is_empty()) {
            word.extend(c.to_lowercase());
        } else if !word.is_empty() {
            out.push(std::mem::take(&mut word));
        }
    }
    if !word.is_empty() {
        out.push(word);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tables_line_up() {
        assert_eq!(FOLD_FROM.chars().count(), FOLD_TO.chars().count());
    }

    #[test]
    fn words_are_cut_folded_and_lower_cased() {
        for (text, want) in [
            (
                "Đơn hàng #123 của Khách, SĐT 0912-345",
                &["don", "hang", "123", "cua", "khach", "sdt", "0912", "345"][..],
            ),
            ("an@shop.vn", &["an", "shop", "vn"]),
            (" # ! ", &[]),
            ("GẶP NHÂN VIÊN", &["gap", "nhan", "vien"]),
            ("Tư vấn viên", &["tu", "van", "vien"]),
            // Decomposed input (a + combining acute, e + combining circumflex and dot below).
            (
                "gia\u{301} bao nhie\u{302}\u{323}u",
                &["gia", "bao", "nhieu"],
            ),
        ] {
            assert_eq!(words(text), want, "{text}");
        }
    }

    #[test]
    fn fold_keeps_punctuation_and_spaces() {
        assert_eq!(fold("Giá: 150.000đ!"), "gia: 150.000d!");
        assert_eq!(lower_words("Giá GIA"), ["giá", "gia"]);
    }
}
