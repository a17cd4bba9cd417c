//! Recordings of terminal and command streams, shared by every adapter
//! that relays one (a Kubernetes exec, an SSH shell or command): an
//! asciicast v2 whose every text is masked before it is kept
//! ([`Cast`]), written to its file as the stream goes and named by its
//! SHA-256 when whole ([`RecordingFile`]).

mod cast;
mod file;
mod lines;

pub use cast::{Cast, Header, Stdio};
pub use file::{RecordingFile, Written};
pub use lines::{Lines, BLOCK_LIMIT, LINE_LIMIT};

use gatehouse_mask::{MaskingEngine, Scratch};

/// `text` as records keep it: every hit of `engine`'s detectors masked.
pub fn mask_for_record(engine: &MaskingEngine, text: &str) -> String {
    let mut scratch = Scratch::default();
    let mut tally = engine.tally();
    engine.mask_str(text, &mut scratch, &mut tally).into_owned()
}
