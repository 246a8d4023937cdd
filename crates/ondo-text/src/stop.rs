//! Stop strings over a stream of text deltas.
//!
//! A stop string may arrive split over several deltas, so text that could be the start of one is
//! held back until it is known not to be. The first stop string to complete (the one ending
//! earliest; of those, the longest) ends the stream: the text is cut before it, or after it when
//! `include_stop_str_in_output` is set. The result does not depend on how the text was split.

/// What one delta lets the caller emit.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StopStep {
    /// Text safe to emit now.
    pub text: String,
    /// The stop string that ended the stream at this step, if any.
    pub stop: Option<String>,
}

/// Finds stop strings in streamed text; see the module docs.
#[derive(Debug, Clone)]
pub struct StopMatcher {
    stops: Vec<String>,
    include_stop: bool,
    held: String,
    stopped: bool,
}

impl StopMatcher {
    /// Empty stop strings are ignored.
    pub fn new(stops: &[String], include_stop_str_in_output: bool) -> StopMatcher {
        let stops = stops.iter().filter(|s| !s.is_empty()).cloned().collect();
        StopMatcher {
            stops,
            include_stop: include_stop_str_in_output,
            held: String::new(),
            stopped: false,
        }
    }

    /// Whether a stop string has matched; later deltas are then ignored.
    pub fn is_stopped(&self) -> bool {
        self.stopped
    }

    /// Feeds the next delta.
    pub fn push(&mut self, delta: &str) -> StopStep {
        if self.stopped {
            return StopStep::default();
        }
        self.held.push_str(delta);
        if let Some((start, stop)) = self.first_match() {
            self.stopped = true;
            let end = if self.include_stop { start + stop.len() } else { start };
            let text = self.held[..end].to_string();
            self.held.clear();
            return StopStep { text, stop: Some(stop) };
        }
        let keep = self.partial_suffix_len();
        let text = self.held[..self.held.len() - keep].to_string();
        self.held.drain(..self.held.len() - keep);
        StopStep { text, stop: None }
    }

    /// Releases the held-back text when generation ends without a stop string.
    pub fn finish(&mut self) -> String {
        std::mem::take(&mut self.held)
    }

    /// (start, stop string) of the match that ends first; the longest among equal ends.
    fn first_match(&self) -> Option<(usize, String)> {
        let found = self
            .stops
            .iter()
            .filter_map(|s| self.held.find(s.as_str()).map(|at| (at + s.len(), at, s)));
        let (_, start, stop) = found.min_by_key(|&(end, start, _)| (end, start))?;
        Some((start, stop.clone()))
    }

    /// Length of the longest end of the held text that begins some stop string.
    fn partial_suffix_len(&self) -> usize {
        let held = self.held.as_bytes();
        let candidates = self.stops.iter().flat_map(|s| {
            (1..s.len().min(held.len() + 1))
                .rev()
                .filter(|&k| s.is_char_boundary(k) && held.ends_with(&s.as_bytes()[..k]))
                .take(1)
        });
        candidates.max().unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matcher(stops: &[&str], include: bool) -> StopMatcher {
        let stops: Vec<String> = stops.iter().map(|s| s.to_string()).collect();
        StopMatcher::new(&stops, include)
    }

    /// Feeds all deltas; returns the emitted text (with finish()) and the matched stop.
    fn run(m: &mut StopMatcher, deltas: &[&str]) -> (String, Option<String>) {
        let mut text = String::new();
        let mut stop = None;
        for d in deltas {
            let step = m.push(d);
            text.push_str(&step.text);
            stop = stop.or(step.stop);
        }
        if stop.is_none() {
            text.push_str(&m.finish());
        }
        (text, stop)
    }

    #[test]
    fn stop_in_one_delta() {
        let (text, stop) = run(&mut matcher(&["STOP"], false), &["abcSTOPdef"]);
        assert_eq!((text.as_str(), stop.as_deref()), ("abc", Some("STOP")));
    }

    #[test]
    fn stop_split_over_two_and_three_deltas() {
        for deltas in [
            &["abcST", "OPdef"][..],
            &["abcS", "TO", "Pdef"][..],
            &["abc", "S", "T", "O", "P"][..],
        ] {
            let (text, stop) = run(&mut matcher(&["STOP"], false), deltas);
            assert_eq!((text.as_str(), stop.as_deref()), ("abc", Some("STOP")), "{deltas:?}");
            let (text, _) = run(&mut matcher(&["STOP"], true), deltas);
            assert_eq!(text, "abcSTOP", "{deltas:?}");
        }
    }

    #[test]
    fn partial_match_is_held_back_then_released() {
        let mut m = matcher(&["STOP"], false);
        assert_eq!(m.push("abcST").text, "abc");
        assert_eq!(m.push("x").text, "STx");
        assert_eq!(m.push("S").text, "");
        assert_eq!(m.finish(), "S");
    }

    #[test]
    fn include_keeps_stop_string() {
        let (text, stop) = run(&mut matcher(&["\n\n"], true), &["one\n", "\ntwo"]);
        assert_eq!((text.as_str(), stop.as_deref()), ("one\n\n", Some("\n\n")));
    }

    #[test]
    fn earliest_completed_stop_wins() {
        // "bcd" ends before "abcde", so it wins although "abcde" starts earlier.
        let (text, stop) = run(&mut matcher(&["abcde", "bcd"], false), &["xabcdef"]);
        assert_eq!((text.as_str(), stop.as_deref()), ("xa", Some("bcd")));
        // Same end: the longer one cuts more.
        let (text, stop) = run(&mut matcher(&["cd", "bcd"], false), &["xab", "cdy"]);
        assert_eq!((text.as_str(), stop.as_deref()), ("xa", Some("bcd")));
    }

    #[test]
    fn overlapping_candidates_hold_the_longest_partial() {
        let mut m = matcher(&["abc", "bcx"], false);
        assert_eq!(m.push("zab").text, "z");
        let step = m.push("cq");
        assert_eq!((step.text.as_str(), step.stop.as_deref()), ("", Some("abc")));
        let (text, stop) = run(&mut matcher(&["aab"], false), &["aa", "aab"]);
        assert_eq!((text.as_str(), stop.as_deref()), ("aa", Some("aab")));
    }

    #[test]
    fn korean_stop_strings() {
        let deltas = ["안녕하세요. ", "감사", "합니다", " 끝"];
        let (text, stop) = run(&mut matcher(&["감사합니다"], false), &deltas);
        assert_eq!((text.as_str(), stop.as_deref()), ("안녕하세요. ", Some("감사합니다")));
        let (text, _) = run(&mut matcher(&["감사합니다"], true), &deltas);
        assert_eq!(text, "안녕하세요. 감사합니다");
        let mut m = matcher(&["세요!"], false);
        assert_eq!(m.push("하세").text, "하");
        assert_eq!(m.push("요.").text, "세요.");
    }

    #[test]
    fn no_stop_strings_passes_text_through() {
        let mut m = matcher(&[""], false);
        assert_eq!(m.push("abc").text, "abc");
        assert_eq!(m.finish(), "");
    }

    #[test]
    fn after_a_stop_nothing_more_is_emitted() {
        let mut m = matcher(&["x"], false);
        assert_eq!(m.push("ax").stop.as_deref(), Some("x"));
        assert!(m.is_stopped());
        assert_eq!(m.push("more"), StopStep::default());
    }
}
