//! The service's log lines. A service started without a filter key
//! (`--insecure-no-filter-key`) lets anyone who reaches it open and consume tickets, so every
//! line it writes says so, as its page does: an operator reading any of them learns it.

use std::fmt::Display;

/// Where the service's lines go (standard error), and what each starts with.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Log {
    insecure: bool,
}

/// What every line of a service without a filter key starts with.
pub const INSECURE: &str =
    "INSECURE: no filter key, anyone who reaches the service can open and consume tickets: ";

impl Log {
    pub fn new(insecure: bool) -> Self {
        Self { insecure }
    }

    pub fn insecure(self) -> bool {
        self.insecure
    }

    /// The line as written (tests read it).
    pub fn format(self, message: impl Display) -> String {
        let warning = if self.insecure { INSECURE } else { "" };
        format!("vigil approvals: {warning}{message}")
    }

    pub fn line(self, message: impl Display) {
        eprintln!("{}", self.format(message));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_line_of_a_service_without_a_filter_key_says_so() {
        assert_eq!(
            Log::new(false).format("listening"),
            "vigil approvals: listening"
        );
        assert!(Log::new(true)
            .format("listening")
            .starts_with("vigil approvals: INSECURE: no filter key"));
    }
}
