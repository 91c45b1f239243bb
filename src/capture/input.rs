//! Command-line inputs: stdin, files, and directories walked recursively.

use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use super::{is_known_magic, read_prefix, CaptureReader, ReadError};

/// One input named on the command line, after expansion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// Standard input (`-`).
    Stdin,
    /// A file, as given or as found under a directory (joined to it).
    File(PathBuf),
}

impl Input {
    /// `"-"` for stdin, else the path.
    pub fn display(&self) -> String {
        match self {
            Input::Stdin => "-".to_string(),
            Input::File(p) => p.display().to_string(),
        }
    }
}

/// Expand command-line arguments into inputs.
///
/// `-` is stdin. A directory is walked recursively in path order, keeping regular files whose
/// first four bytes are a pcap, pcapng, gzip or zstd magic; other files are returned in the
/// second vector (skipped, with the reason). A named file is kept as is: its problems surface
/// when it is opened. A path that does not exist (or a directory that cannot be read) is
/// returned in the third vector (errors).
// The tuple of three vectors is the agreed interface.
#[allow(clippy::type_complexity)]
pub fn expand_inputs(
    args: &[PathBuf],
) -> (Vec<Input>, Vec<(PathBuf, String)>, Vec<(PathBuf, String)>) {
    let mut inputs = Vec::new();
    let mut skipped = Vec::new();
    let mut errors = Vec::new();
    for arg in args {
        if arg.as_os_str() == "-" {
            inputs.push(Input::Stdin);
            continue;
        }
        match fs::metadata(arg) {
            Err(e) => errors.push((arg.clone(), describe_io(&e))),
            Ok(meta) if meta.is_dir() => {
                let mut found = Vec::new();
                walk(arg, &mut found, &mut skipped, &mut errors);
                found.sort();
                inputs.extend(found.into_iter().map(Input::File));
            }
            Ok(_) => inputs.push(Input::File(arg.clone())),
        }
    }
    (inputs, skipped, errors)
}

fn describe_io(e: &std::io::Error) -> String {
    if e.kind() == ErrorKind::NotFound {
        "no such file or directory".to_string()
    } else {
        e.to_string()
    }
}

/// Collect capture files under `dir` (recursively) into `found`.
fn walk(
    dir: &Path,
    found: &mut Vec<PathBuf>,
    skipped: &mut Vec<(PathBuf, String)>,
    errors: &mut Vec<(PathBuf, String)>,
) {
    let entries = match fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) => {
            errors.push((dir.to_path_buf(), describe_io(&e)));
            return;
        }
    };
    let mut paths = Vec::new();
    for entry in entries {
        match entry {
            Ok(en) => paths.push(en.path()),
            Err(e) => errors.push((dir.to_path_buf(), describe_io(&e))),
        }
    }
    paths.sort();
    for path in paths {
        let link = fs::symlink_metadata(&path).map(|m| m.file_type().is_symlink());
        let meta = match fs::metadata(&path) {
            Ok(m) => m,
            Err(e) => {
                skipped.push((path, format!("cannot read: {}", describe_io(&e))));
                continue;
            }
        };
        if meta.is_dir() {
            if matches!(link, Ok(true)) {
                skipped.push((path, "symbolic link to a directory (not followed)".into()));
            } else {
                walk(&path, found, skipped, errors);
            }
        } else if !meta.is_file() {
            skipped.push((path, "not a regular file".into()));
        } else {
            match sniff(&path) {
                Ok(None) => found.push(path),
                Ok(Some(reason)) => skipped.push((path, reason)),
                Err(e) => skipped.push((path, format!("cannot read: {}", describe_io(&e)))),
            }
        }
    }
}

/// `None` if the file starts with a known magic, else the reason to skip it.
fn sniff(path: &Path) -> std::io::Result<Option<String>> {
    let mut f = fs::File::open(path)?;
    let mut head = [0u8; 4];
    let n = read_prefix(&mut f, &mut head)?;
    let head = head.get(..n).unwrap_or(&[]);
    Ok(if n == 0 {
        Some("empty file".to_string())
    } else if is_known_magic(head) {
        None
    } else {
        Some(format!(
            "not a capture file (first bytes {})",
            head.iter()
                .map(|b| format!("{b:02x}"))
                .collect::<Vec<_>>()
                .join(" ")
        ))
    })
}

/// Open an input for streaming.
pub fn open_input(input: &Input) -> Result<CaptureReader, ReadError> {
    match input {
        Input::Stdin => CaptureReader::from_read(Box::new(std::io::stdin())),
        Input::File(p) => CaptureReader::open(p),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::testutil::PcapB;

    struct TempDir(PathBuf);
    impl TempDir {
        fn new(tag: &str) -> TempDir {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0);
            let p = std::env::temp_dir().join(format!(
                "allowscope-capture-{tag}-{}-{nanos}",
                std::process::id()
            ));
            fs::create_dir_all(&p).expect("create temp dir");
            TempDir(p)
        }
    }
    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn expands_directories_recursively_and_sorted() {
        let tmp = TempDir::new("expand");
        let root = &tmp.0;
        let pcap = PcapB::new(false, false, 65535, 1)
            .rec(1, 0, &[1, 2, 3], 3)
            .build();
        fs::create_dir_all(root.join("b/deeper")).unwrap();
        fs::create_dir_all(root.join("a")).unwrap();
        fs::write(root.join("b/deeper/z.pcap"), &pcap).unwrap();
        fs::write(root.join("b/x.cap"), &pcap).unwrap();
        fs::write(root.join("a/notes.txt"), b"hello world").unwrap();
        fs::write(root.join("a/empty"), b"").unwrap();
        fs::write(root.join("a/ng"), [0x0a, 0x0d, 0x0d, 0x0a, 0, 0]).unwrap();
        fs::write(root.join("c.gz"), [0x1f, 0x8b, 8, 0]).unwrap();
        fs::write(root.join("d.zst"), [0x28, 0xb5, 0x2f, 0xfd, 0]).unwrap();
        fs::write(root.join("named.txt"), b"not a capture").unwrap();

        let missing = root.join("nope.pcap");
        let args = vec![
            root.clone(),
            PathBuf::from("-"),
            root.join("named.txt"),
            missing.clone(),
        ];
        let (inputs, skipped, errors) = expand_inputs(&args);
        let want = vec![
            Input::File(root.join("a/ng")),
            Input::File(root.join("b/deeper/z.pcap")),
            Input::File(root.join("b/x.cap")),
            Input::File(root.join("c.gz")),
            Input::File(root.join("d.zst")),
            Input::Stdin,
            Input::File(root.join("named.txt")),
        ];
        assert_eq!(inputs, want);
        assert_eq!(
            skipped,
            vec![
                (root.join("a/empty"), "empty file".to_string()),
                (
                    root.join("a/notes.txt"),
                    "not a capture file (first bytes 68 65 6c 6c)".to_string()
                ),
                (
                    root.join("named.txt"),
                    "not a capture file (first bytes 6e 6f 74 20)".to_string()
                ),
            ]
        );
        assert_eq!(
            errors,
            vec![(missing, "no such file or directory".to_string())]
        );
        assert_eq!(Input::Stdin.display(), "-");
        assert_eq!(
            inputs[1].display(),
            root.join("b/deeper/z.pcap").display().to_string()
        );

        // A kept file opens and reads.
        let mut r = open_input(&inputs[1]).expect("open");
        assert_eq!(
            r.next_frame().unwrap().map(|f| f.data.to_vec()),
            Some(vec![1, 2, 3])
        );
        // A named non-capture fails when opened.
        let err = open_input(&inputs[6]).expect_err("error");
        assert!(matches!(
            err.kind,
            crate::capture::ReadErrorKind::BadMagic(_)
        ));
        // A missing file is an I/O error at offset 0.
        let err = open_input(&Input::File(root.join("nope.pcap"))).expect_err("error");
        assert_eq!(err.offset, 0);
        assert!(matches!(err.kind, crate::capture::ReadErrorKind::Io(_)));
    }

    #[test]
    fn empty_directory_and_no_args() {
        let tmp = TempDir::new("empty");
        let (inputs, skipped, errors) = expand_inputs(std::slice::from_ref(&tmp.0));
        assert!(inputs.is_empty() && skipped.is_empty() && errors.is_empty());
        let (inputs, skipped, errors) = expand_inputs(&[]);
        assert!(inputs.is_empty() && skipped.is_empty() && errors.is_empty());
    }
}
