//! tlog-checkpoint known-answer tests and error cases.
//!
//! Vector sources (values copied, code our own):
//! - C2SP: https://c2sp.org/tlog-checkpoint (github.com/C2SP/C2SP,
//!   `tlog-checkpoint.md`): the example.com/behind-the-sofa checkpoint.
//! - Go: golang.org/x/mod, `sumdb/tlog/note_test.go` (`TestFormatTree`,
//!   `TestParseTree`): the "go.sum database tree" text.
#![allow(clippy::unwrap_used)]

use ed25519_dalek::SigningKey;
use evident_core::ErrorCode;
use evident_core::Hash;
use evident_core::checkpoint::{Checkpoint, CheckpointError, open_checkpoint, sign_checkpoint};
use evident_core::hash::{HashError, leaf_hash, sha256};
use evident_core::note::{NoteError, NoteSigner, Verifiers, parse_note};

// https://c2sp.org/tlog-checkpoint, the example at the top of the spec.
const SPEC_TEXT: &str = "example.com/behind-the-sofa\n\
                         20852163\n\
                         CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n";
const SPEC_SIG: &str = "\u{2014} example.com/behind-the-sofa Az3grlgtzPICa5OS8npVmf1Myq/5IZniMp+ZJurmRDeOoRDe4URYN7u5/Zhcyv2q1gGzGku9nTo+zyWE+xeMcTOAYQ8=\n";

// golang.org/x/mod sumdb/tlog/note_test.go TestFormatTree: the root is
// Go's RecordHash("hello world"), the RFC 6962 leaf hash.
const GO_TREE: &str =
    "go.sum database tree\n123456789012\nTszzRgjTG6xce+z2AG31kAXYKBgQVtCSCE40HmuwBb0=\n";

const ROOT: &str = "CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=";

fn parse_err(text: &str) -> CheckpointError {
    Checkpoint::parse(text).unwrap_err()
}

fn signer(seed: u8) -> NoteSigner {
    NoteSigner::new("log.example/evident", SigningKey::from_bytes(&[seed; 32])).unwrap()
}

fn cp() -> Checkpoint {
    Checkpoint {
        origin: "log.example/evident".into(),
        size: 42,
        root: sha256(b"root"),
        extensions: vec![],
    }
}

#[test]
fn c2sp_spec_example_round_trips() {
    let msg = format!("{SPEC_TEXT}\n{SPEC_SIG}");
    let (text, sigs) = parse_note(msg.as_bytes()).unwrap();
    assert_eq!(text, SPEC_TEXT);
    assert_eq!(sigs[0].name, "example.com/behind-the-sofa");
    assert_eq!(sigs[0].id, 0x033de0ae);
    let cp = Checkpoint::parse(&text).unwrap();
    assert_eq!(cp.origin, "example.com/behind-the-sofa");
    assert_eq!(cp.size, 20852163);
    assert_eq!(cp.root.to_base64(), ROOT);
    assert!(cp.extensions.is_empty());
    assert_eq!(cp.to_text(), SPEC_TEXT);
}

#[test]
fn go_tree_round_trips() {
    let cp = Checkpoint::parse(GO_TREE).unwrap();
    assert_eq!(cp.origin, "go.sum database tree");
    assert_eq!(cp.size, 123456789012);
    assert_eq!(cp.root, leaf_hash(b"hello world"));
    assert_eq!(cp.to_text(), GO_TREE);
    // What Go ignores as "junk on end" is, for C2SP, extension lines.
    let with_ext = format!("{GO_TREE}JOE\nJOE\n");
    let cp = Checkpoint::parse(&with_ext).unwrap();
    assert_eq!(cp.extensions, ["JOE", "JOE"]);
    assert_eq!(cp.to_text(), with_ext);
}

#[test]
fn size_edges() {
    for (s, n) in [("0", 0u64), ("1", 1), ("18446744073709551615", u64::MAX)] {
        let cp = Checkpoint::parse(&format!("o\n{s}\n{ROOT}\n")).unwrap();
        assert_eq!(cp.size, n);
        assert_eq!(cp.to_text(), format!("o\n{s}\n{ROOT}\n"));
    }
}

#[test]
fn sign_and_open() {
    let (a, b) = (signer(1), signer(2));
    let mut c = cp();
    c.extensions = vec!["ext one".into()];
    let msg = sign_checkpoint(&c, &[&a, &b]).unwrap();
    assert!(msg.starts_with(&c.to_text()));
    for keys in [
        vec![a.verifier_key()],
        vec![b.verifier_key()],
        vec![a.verifier_key(), b.verifier_key()],
    ] {
        let n = keys.len();
        let (got, note) = open_checkpoint(
            msg.as_bytes(),
            &Verifiers::new(keys),
            Some("log.example/evident"),
        )
        .unwrap();
        assert_eq!(got, c);
        assert_eq!(note.verified.len(), n);
        assert_eq!(note.text, c.to_text());
    }
    let (got, _) =
        open_checkpoint(msg.as_bytes(), &Verifiers::new([a.verifier_key()]), None).unwrap();
    assert_eq!(got, c);
}

// --- Every error variant ---------------------------------------------------

#[test]
fn error_note() {
    let a = signer(1);
    let msg = sign_checkpoint(&cp(), &[&a]).unwrap();
    let tampered = msg.replacen("42", "43", 1);
    assert_eq!(
        open_checkpoint(
            tampered.as_bytes(),
            &Verifiers::new([a.verifier_key()]),
            None
        ),
        Err(CheckpointError::Note(NoteError::BadSignature {
            name: a.name().into(),
            id: a.id()
        }))
    );
    let e = open_checkpoint(msg.as_bytes(), &Verifiers::default(), None).unwrap_err();
    assert_eq!(
        e,
        CheckpointError::Note(NoteError::NoKnownSignature { unverified: 1 })
    );
    assert_eq!(e.code(), "note.no_known_signature");
    assert_eq!(
        sign_checkpoint(&cp(), &[]),
        Err(CheckpointError::Note(NoteError::NoSignatures))
    );
    // Control characters inside a field surface from the note layer.
    let mut c = cp();
    c.origin = "log\r".into();
    assert_eq!(
        sign_checkpoint(&c, &[&a]),
        Err(CheckpointError::Note(NoteError::ControlChar {
            offset: 3,
            byte: b'\r'
        }))
    );
}

#[test]
fn error_missing_final_newline() {
    assert_eq!(
        parse_err(SPEC_TEXT.trim_end_matches('\n')),
        CheckpointError::MissingFinalNewline
    );
    assert_eq!(parse_err(""), CheckpointError::MissingFinalNewline);
}

#[test]
fn error_too_few_lines() {
    assert_eq!(parse_err("o\n"), CheckpointError::TooFewLines { lines: 1 });
    assert_eq!(
        parse_err("o\n1\n"),
        CheckpointError::TooFewLines { lines: 2 }
    );
}

#[test]
fn error_control_char() {
    let crlf = SPEC_TEXT.replace('\n', "\r\n");
    assert_eq!(
        parse_err(&crlf),
        CheckpointError::ControlChar {
            offset: 27,
            byte: b'\r'
        }
    );
    assert_eq!(parse_err(&crlf).code(), "checkpoint.malformed");
}

#[test]
fn error_bad_origin() {
    assert_eq!(
        parse_err(&format!("\n1\n{ROOT}\n")),
        CheckpointError::BadOrigin {
            origin: String::new()
        }
    );
    let a = signer(1);
    for origin in ["", "two\nlines"] {
        let mut c = cp();
        c.origin = origin.into();
        assert_eq!(
            sign_checkpoint(&c, &[&a]),
            Err(CheckpointError::BadOrigin {
                origin: origin.into()
            })
        );
    }
}

#[test]
fn error_bad_size() {
    for size in [
        "01",
        "00",
        "+1",
        "-1",
        "",
        " 1",
        "1 ",
        "0x10",
        "1_000",
        "1e3",
        "١",                    // Arabic-Indic digit one
        "18446744073709551616", // u64::MAX + 1
        "99999999999999999999",
    ] {
        let e = parse_err(&format!("o\n{size}\n{ROOT}\n"));
        assert_eq!(
            e,
            CheckpointError::BadSize { line: size.into() },
            "{size:?}"
        );
        assert_eq!(e.code(), "checkpoint.bad_size");
    }
}

#[test]
fn error_bad_root() {
    let bad = |root: &str| parse_err(&format!("o\n1\n{root}\n"));
    // Non-canonical: unpadded, non-zero trailing bits, URL alphabet.
    for root in [
        ROOT.trim_end_matches('='),
        "CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2J=",
        "CsUYapGGPo4dkMgIAUqom_Xajj7h2fB2MPA3j2jxq2I=",
        // go sumdb/tlog note_test.go TestParseTree bad tree.
        "TszzRgjTG6xce+z2AG31kAXYKBgQVtCSCE40HmuwBTOOBIG=",
    ] {
        assert_eq!(
            bad(root),
            CheckpointError::BadRoot(HashError::BadBase64(root.into())),
            "{root:?}"
        );
    }
    // Empty, 31 and 33 bytes.
    assert_eq!(bad(""), CheckpointError::BadRoot(HashError::BadLength(0)));
    let short = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA==";
    assert_eq!(
        bad(short),
        CheckpointError::BadRoot(HashError::BadLength(31))
    );
    let long = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    assert_eq!(
        bad(long),
        CheckpointError::BadRoot(HashError::BadLength(33))
    );
    assert_eq!(bad(short).code(), "checkpoint.bad_root");
    // Sanity: the canonical forms are accepted.
    assert_eq!(Hash::from_base64(ROOT).unwrap().to_base64(), ROOT);
}

#[test]
fn error_bad_extension() {
    // A blank line after the root, i.e. an empty extension line.
    assert_eq!(
        parse_err(&format!("{SPEC_TEXT}\n")),
        CheckpointError::BadExtension { index: 0 }
    );
    assert_eq!(
        parse_err(&format!("{SPEC_TEXT}a\n\nb\n")),
        CheckpointError::BadExtension { index: 1 }
    );
    let a = signer(1);
    for ext in ["", "x\ny"] {
        let mut c = cp();
        c.extensions = vec!["ok".into(), ext.into()];
        assert_eq!(
            sign_checkpoint(&c, &[&a]),
            Err(CheckpointError::BadExtension { index: 1 })
        );
    }
}

#[test]
fn error_origin_mismatch() {
    let a = signer(1);
    let msg = sign_checkpoint(&cp(), &[&a]).unwrap();
    let e = open_checkpoint(
        msg.as_bytes(),
        &Verifiers::new([a.verifier_key()]),
        Some("log.example/other"),
    )
    .unwrap_err();
    assert_eq!(
        e,
        CheckpointError::OriginMismatch {
            expected: "log.example/other".into(),
            got: "log.example/evident".into()
        }
    );
    assert_eq!(e.code(), "checkpoint.origin_mismatch");
}

#[test]
fn error_checkpoint_text_in_valid_note() {
    // A validly signed note whose text is not a checkpoint.
    let a = signer(1);
    let msg = evident_core::note::sign_note("just a note\n", &[&a]).unwrap();
    assert_eq!(
        open_checkpoint(msg.as_bytes(), &Verifiers::new([a.verifier_key()]), None),
        Err(CheckpointError::TooFewLines { lines: 1 })
    );
}
