//! Standard output for the `vigil` command. `println!` panics when the reader of a pipe goes
//! away (`vigil replay ... | head`); these macros end the process quietly instead, with
//! status 0 for the part written, as Unix tools do. Other write errors are reported once and
//! end the process with status 2 (the output is incomplete).

use std::io::{ErrorKind, Write};

/// Writes `args` to standard output; on a closed pipe, exits 0.
pub fn write(args: std::fmt::Arguments<'_>) {
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_fmt(args) {
        finish(e);
    }
}

fn finish(e: std::io::Error) -> ! {
    if e.kind() == ErrorKind::BrokenPipe {
        std::process::exit(0);
    }
    eprintln!("vigil: cannot write to standard output: {e}");
    std::process::exit(2);
}

/// `print!` that ends the process quietly when standard output is a closed pipe.
#[macro_export]
macro_rules! out {
    ($($arg:tt)*) => { $crate::stdout::write(format_args!($($arg)*)) };
}

/// `println!` that ends the process quietly when standard output is a closed pipe.
#[macro_export]
macro_rules! outln {
    () => { $crate::stdout::write(format_args!("\n")) };
    ($($arg:tt)*) => { $crate::stdout::write(format_args!("{}\n", format_args!($($arg)*))) };
}
