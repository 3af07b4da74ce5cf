//! The view a detector gets of the text at one position: bytes ahead of the cursor as far as
//! they have arrived, and a fixed amount of history behind it.
//!
//! Streaming correctness rests on one rule: a detector may read any byte ahead, but if it
//! reads past what has arrived (and the text has not ended), the view remembers it was
//! *starved* and the masker waits for more instead of deciding. A decision is therefore only
//! ever taken on bytes that would be the same however the body was cut into chunks, and the
//! history a detector may look back on is clamped to [`LOOKBEHIND`] bytes in every case.

use std::cell::Cell;

/// Bytes of already-released text a detector may look back on (context words, boundaries).
pub const LOOKBEHIND: usize = 64;

pub struct View<'a> {
    buf: &'a [u8],
    cursor: usize,
    floor: usize,
    ended: bool,
    starved: Cell<bool>,
}

impl<'a> View<'a> {
    /// `buf[cursor..]` is the undecided text; `buf[..cursor]` holds at least the lookbehind
    /// (or everything from the start of the text).
    pub fn new(buf: &'a [u8], cursor: usize, ended: bool) -> Self {
        Self {
            buf,
            cursor,
            floor: cursor.saturating_sub(LOOKBEHIND),
            ended,
            starved: Cell::new(false),
        }
    }

    /// The byte `i` positions ahead of the cursor; `None` past the end of the text. Reading
    /// past what has arrived marks the view starved.
    #[inline]
    pub fn at(&self, i: usize) -> Option<u8> {
        match self.buf.get(self.cursor + i) {
            Some(b) => Some(*b),
            None => {
                if !self.ended {
                    self.starved.set(true);
                }
                None
            }
        }
    }

    /// The byte `n` positions before the cursor (1 = just before), within the lookbehind.
    #[inline]
    pub fn before(&self, n: usize) -> Option<u8> {
        let i = self.cursor.checked_sub(n)?;
        if i < self.floor {
            return None;
        }
        Some(self.buf[i])
    }

    /// Up to `n` bytes ahead, as far as they have arrived (a short slice starves the view).
    pub fn ahead(&self, n: usize) -> &'a [u8] {
        let end = self.cursor + n;
        if end > self.buf.len() {
            if !self.ended {
                self.starved.set(true);
            }
            &self.buf[self.cursor..]
        } else {
            &self.buf[self.cursor..end]
        }
    }

    /// The lookbehind text, at most `n` bytes, ending just before the cursor.
    pub fn behind(&self, n: usize) -> &'a [u8] {
        let start = self.cursor.saturating_sub(n).max(self.floor);
        &self.buf[start..self.cursor]
    }

    pub fn starved(&self) -> bool {
        self.starved.get()
    }

    pub fn ended(&self) -> bool {
        self.ended
    }
}

#[inline]
pub fn is_alnum(b: Option<u8>) -> bool {
    matches!(b, Some(b) if b.is_ascii_alphanumeric())
}

#[inline]
pub fn is_digit(b: Option<u8>) -> bool {
    matches!(b, Some(b) if b.is_ascii_digit())
}

/// Whether one of `words` (lowercase ASCII) ends within the last `window` bytes before the
/// cursor, as a whole word; used for context such as "routing number 021000021".
pub fn context_before(view: &View, window: usize, words: &[&str]) -> bool {
    let text = view.behind(window);
    words.iter().any(|w| contains_word(text, w.as_bytes()))
}

pub fn contains_word(text: &[u8], word: &[u8]) -> bool {
    if word.is_empty() || text.len() < word.len() {
        return false;
    }
    (0..=text.len() - word.len()).any(|i| {
        text[i..i + word.len()].eq_ignore_ascii_case(word)
            && (i == 0 || !text[i - 1].is_ascii_alphabetic())
            && text
                .get(i + word.len())
                .is_none_or(|b| !b.is_ascii_alphabetic())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reading_past_the_arrived_text_starves_only_an_open_text() {
        let open = View::new(b"abc", 1, false);
        assert_eq!(open.at(1), Some(b'c'));
        assert!(!open.starved());
        assert_eq!(open.at(2), None);
        assert!(open.starved());
        let ended = View::new(b"abc", 1, true);
        assert_eq!(ended.at(5), None);
        assert!(!ended.starved());
    }

    #[test]
    fn lookbehind_is_clamped_whatever_the_buffer_holds() {
        let text = vec![b'x'; 200];
        let view = View::new(&text, 150, false);
        assert_eq!(view.behind(500).len(), LOOKBEHIND);
        assert_eq!(view.before(LOOKBEHIND), Some(b'x'));
        assert_eq!(view.before(LOOKBEHIND + 1), None);
    }

    #[test]
    fn context_words_match_whole_words_in_any_case() {
        assert!(contains_word(b"my Routing number: ", b"routing"));
        assert!(!contains_word(b"rerouting", b"routing"));
    }
}
