//! The user guide in `book/` builds with the pinned mdbook, without warnings, and every internal
//! link in it resolves: each relative link to a page or an image that exists, each `#anchor` to
//! an element that has that id. mdbook itself warns about some broken links only, so the rendered
//! HTML is checked here.
//!
//! mdbook is installed by `./install.sh` into the tool cache; a missing mdbook fails this test
//! with the command that installs it.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Component, Path, PathBuf};
use std::process::Command;

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn book_dir() -> PathBuf {
    repo_root().join("book")
}

/// The mdbook version the book is built with (`install.sh` reads the same file).
fn pinned_version() -> String {
    fs::read_to_string(book_dir().join("MDBOOK_VERSION"))
        .expect("book/MDBOOK_VERSION")
        .trim()
        .to_string()
}

/// The tool cache, resolved as cargo-worker-build and install.sh resolve it.
fn tool_cache() -> PathBuf {
    let non_empty = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty());
    if let Some(dir) = non_empty("CARGO_WORKER_BUILD_CACHE") {
        return PathBuf::from(dir);
    }
    non_empty("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| non_empty("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .expect("HOME is set")
        .join("cargo-worker-build")
}

fn version_of(mdbook: &Path) -> Option<String> {
    let out = Command::new(mdbook).arg("--version").output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    // `mdbook v0.5.4`
    Some(
        text.split_whitespace()
            .nth(1)?
            .trim_start_matches('v')
            .to_string(),
    )
}

/// `MDBOOK` when set, else the pinned version in the tool cache, else a `mdbook` on PATH of the
/// pinned version. Never skips: a missing mdbook names the command that installs it.
fn mdbook() -> PathBuf {
    let version = pinned_version();
    if let Some(path) = std::env::var_os("MDBOOK").filter(|v| !v.is_empty()) {
        return PathBuf::from(path);
    }
    let cached = tool_cache()
        .join("mdbook")
        .join(&version)
        .join("bin")
        .join("mdbook");
    if cached.is_file() {
        return cached;
    }
    if version_of(Path::new("mdbook")).as_deref() == Some(version.as_str()) {
        return PathBuf::from("mdbook");
    }
    panic!(
        "mdbook {version} is not installed (looked for {} and on PATH); run ./install.sh, or: \
         cargo install mdbook --version ={version} --locked --no-default-features --features search --root {}",
        cached.display(),
        cached.parent().unwrap().parent().unwrap().display()
    );
}

/// Every element id and every link target of one rendered page.
#[derive(Debug, Default)]
struct Page {
    ids: BTreeSet<String>,
    /// `href` of `<a>` and `src` of `<img>`, as written.
    links: Vec<String>,
}

/// The value of `attr="..."` in each tag named `tag` (`<a ...>`, `<img ...>`).
fn attribute_values(html: &str, tag: &str, attr: &str) -> Vec<String> {
    let mut out = Vec::new();
    let open = format!("<{tag} ");
    let mut rest = html;
    while let Some(start) = rest.find(&open) {
        let after = &rest[start + open.len()..];
        let end = after.find('>').unwrap_or(after.len());
        let tag_text = &after[..end];
        let needle = format!("{attr}=\"");
        // Attribute names are preceded by whitespace; `data-href=` must not match `href=`.
        let mut search = tag_text;
        while let Some(pos) = search.find(&needle) {
            let preceded_by_space = pos == 0
                || search[..pos]
                    .chars()
                    .last()
                    .is_some_and(|c| c.is_whitespace());
            let value_start = pos + needle.len();
            let value_end = search[value_start..]
                .find('"')
                .map_or(search.len(), |e| value_start + e);
            if preceded_by_space {
                out.push(decode_entities(&search[value_start..value_end]));
                break;
            }
            search = &search[value_end..];
        }
        rest = &after[end..];
    }
    out
}

fn decode_entities(s: &str) -> String {
    s.replace("&amp;", "&")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let Ok(b) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn parse_page(html: &str) -> Page {
    let mut ids = BTreeSet::new();
    for marker in [" id=\"", " name=\""] {
        let mut rest = html;
        while let Some(pos) = rest.find(marker) {
            let value = &rest[pos + marker.len()..];
            let end = value.find('"').unwrap_or(value.len());
            ids.insert(decode_entities(&value[..end]));
            rest = &value[end..];
        }
    }
    let mut links = attribute_values(html, "a", "href");
    links.extend(attribute_values(html, "img", "src"));
    Page { ids, links }
}

/// Pages mdbook writes for every book, whose links are its own business: the printable page
/// rewrites links across chapters, and the 404 page links relative to the site root.
const SKIPPED_PAGES: &[&str] = &["print.html", "404.html"];

fn html_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            html_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "html") {
            out.push(path);
        }
    }
}

/// `base/../x` without touching the file system.
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

/// Every broken internal link of the rendered site in `site`, as `page: link (why)`.
fn broken_links(site: &Path) -> Vec<String> {
    let mut files = Vec::new();
    html_files(site, &mut files);
    files.sort();
    let mut pages: BTreeMap<PathBuf, Page> = BTreeMap::new();
    for file in &files {
        let html = fs::read_to_string(file).unwrap();
        pages.insert(normalize(file), parse_page(&html));
    }
    let mut broken = Vec::new();
    for file in &files {
        let name = file
            .strip_prefix(site)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        if SKIPPED_PAGES.contains(&name.as_str()) {
            continue;
        }
        let page = &pages[&normalize(file)];
        for link in &page.links {
            let external = link.contains("://")
                || link.starts_with("//")
                || link.starts_with("mailto:")
                || link.starts_with("javascript:");
            if external || link.is_empty() {
                continue;
            }
            let (path_part, fragment) = match link.split_once('#') {
                Some((p, f)) => (p, Some(percent_decode(f))),
                None => (link.as_str(), None),
            };
            let path_part = path_part.split('?').next().unwrap_or("");
            let target = if path_part.is_empty() {
                normalize(file)
            } else {
                normalize(&file.parent().unwrap().join(percent_decode(path_part)))
            };
            let target = if target.is_dir() {
                target.join("index.html")
            } else {
                target
            };
            if !target.exists() {
                broken.push(format!("{name}: {link} (no such file)"));
                continue;
            }
            if let Some(fragment) = fragment.filter(|f| !f.is_empty()) {
                match pages.get(&target) {
                    Some(target_page) if target_page.ids.contains(&fragment) => {}
                    Some(_) => {
                        broken.push(format!("{name}: {link} (no element with id `{fragment}`)"))
                    }
                    None => broken.push(format!(
                        "{name}: {link} (anchor into a file that is not a page)"
                    )),
                }
            }
        }
    }
    broken
}

#[test]
fn the_book_builds_without_warnings_and_every_internal_link_resolves() {
    let mdbook = mdbook();
    let out_dir = tempfile::Builder::new()
        .prefix("cwb-book-")
        .tempdir()
        .unwrap();
    let started = std::time::Instant::now();
    let output = Command::new(&mdbook)
        .arg("build")
        .arg(book_dir())
        .arg("--dest-dir")
        .arg(out_dir.path())
        .env_remove("RUST_LOG")
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", mdbook.display()));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "`mdbook build book` failed:\n{stderr}"
    );
    eprintln!("mdbook build took {:.2?}", started.elapsed());
    let complaints: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("WARN") || l.contains("ERROR"))
        .collect();
    assert!(
        complaints.is_empty(),
        "mdbook reported problems:\n{}",
        complaints.join("\n")
    );

    let site = out_dir.path();
    // The book has the chapters the issue asks for, and the includes were filled in.
    for (page, must_contain) in [
        ("getting-started.html", "cargo worker-build new my-worker"),
        ("recovery.html", "images/call-path.svg"),
        ("check-eh.html", "schema_version"),
        ("ci.html", "worker-ci.sh: build a Rust Cloudflare Worker"),
        ("ci.html", "actions/cache@v4"),
        ("migrating.html", "WASM_BINDGEN_BIN"),
        ("performance.html", "bench_check"),
        (
            "reference/build.html",
            "Usage: cargo worker-build [OPTIONS]",
        ),
        ("reference/check.html", "Usage: cargo worker-build check"),
        ("troubleshooting.html", "id=\"no-cdylib\""),
    ] {
        let html = fs::read_to_string(site.join(page))
            .unwrap_or_else(|e| panic!("{page} was not rendered: {e}"));
        assert!(
            html.contains(must_contain),
            "{page} does not contain {must_contain:?}"
        );
        assert!(
            !html.contains("{{#include"),
            "{page} has an include mdbook did not resolve"
        );
    }

    let broken = broken_links(site);
    assert!(
        broken.is_empty(),
        "broken internal links in the rendered book:\n{}",
        broken.join("\n")
    );
}

#[test]
fn every_chapter_is_in_the_summary() {
    let src = book_dir().join("src");
    let summary = fs::read_to_string(src.join("SUMMARY.md")).unwrap();
    let mut chapters = Vec::new();
    fn markdown(dir: &Path, src: &Path, out: &mut Vec<String>) {
        for entry in fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                markdown(&path, src, out);
            } else if path.extension().is_some_and(|e| e == "md") {
                out.push(
                    path.strip_prefix(src)
                        .unwrap()
                        .to_string_lossy()
                        .into_owned(),
                );
            }
        }
    }
    markdown(&src, &src, &mut chapters);
    let missing: Vec<&String> = chapters
        .iter()
        .filter(|c| c.as_str() != "SUMMARY.md" && !summary.contains(&format!("]({c})")))
        .collect();
    assert!(
        missing.is_empty(),
        "chapters not in book/src/SUMMARY.md (mdbook would not render them): {missing:?}"
    );
}

/// The checker itself: it must find what is broken, and only that.
#[test]
fn the_link_checker_finds_missing_pages_anchors_and_images() {
    let site = tempfile::tempdir().unwrap();
    let root = site.path();
    fs::create_dir_all(root.join("reference")).unwrap();
    fs::write(
        root.join("index.html"),
        r##"<h1 id="top">Top</h1>
        <a href="#top">ok</a> <a href="reference/a.html#flag">ok</a>
        <a href="reference/a.html#nope">bad anchor</a> <a href="missing.html">bad page</a>
        <a class="x" data-href="ignored.html" href="https://example.com/x.html">external</a>
        <img src="img/missing.svg" alt=""> <a href="reference/a.html">ok</a>"##,
    )
    .unwrap();
    fs::write(
        root.join("reference/a.html"),
        r##"<h3 id="flag">Flag</h3><a href="../index.html#top">ok</a><a href="../index.html#gone">bad</a>"##,
    )
    .unwrap();
    let broken = broken_links(root);
    assert_eq!(
        broken,
        [
            "index.html: reference/a.html#nope (no element with id `nope`)",
            "index.html: missing.html (no such file)",
            "index.html: img/missing.svg (no such file)",
            "reference/a.html: ../index.html#gone (no element with id `gone`)",
        ],
        "{broken:#?}"
    );
}
