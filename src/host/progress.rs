//! Progress on stderr, drawn only when stderr is a terminal (indicatif hides itself
//! otherwise), and always cleared when the work ends, on success or error.

use std::io::{self, Write};

/// A spinner with a byte count on stderr, drawn only when stderr is a terminal.
pub fn spinner(message: &str) -> Bar {
    let bar =
        indicatif::ProgressBar::with_draw_target(None, indicatif::ProgressDrawTarget::stderr());
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "{spinner} {msg} {binary_bytes} ({binary_bytes_per_sec})",
    ) {
        bar.set_style(style);
    }
    bar.set_message(message.to_string());
    Bar(bar)
}

/// Counts bytes written into a progress bar.
pub struct Counted<W: Write> {
    pub inner: W,
    pub bar: indicatif::ProgressBar,
}

impl<W: Write> Write for Counted<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.bar.inc(n as u64);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// A bar of `len` steps drawn with `template` (indicatif's syntax).
pub fn bar(len: u64, template: &str) -> Bar {
    let bar = indicatif::ProgressBar::with_draw_target(
        Some(len),
        indicatif::ProgressDrawTarget::stderr(),
    );
    if let Ok(style) = indicatif::ProgressStyle::with_template(template) {
        bar.set_style(style);
    }
    Bar(bar)
}

/// A progress bar that clears itself when dropped, so an error never leaves one drawn.
pub struct Bar(pub indicatif::ProgressBar);

impl Drop for Bar {
    fn drop(&mut self) {
        self.0.finish_and_clear();
    }
}
