//! Bundle size against Workers' limits: parsing `--max-size`, the share of the plan limits, and
//! the biggest contributors of a module (function bodies and data segments, named from the
//! module's name section) for when a budget is exceeded.

use anyhow::Result;

use crate::errors::{problem, Code};

/// Workers' compressed size limits (gzip) per plan.
pub const FREE_PLAN_LIMIT: u64 = 3 * 1024 * 1024;
pub const PAID_PLAN_LIMIT: u64 = 10 * 1024 * 1024;

/// `3MiB`, `900 KiB`, `1.5MB`, `1048576`: binary (KiB/MiB) or decimal (KB/MB) units, bytes bare.
pub fn parse(text: &str, origin: &str) -> Result<u64> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let factor: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "k" | "kib" => 1024.0,
        "kb" => 1000.0,
        "m" | "mib" => 1024.0 * 1024.0,
        "mb" => 1_000_000.0,
        "g" | "gib" => 1024.0 * 1024.0 * 1024.0,
        "gb" => 1_000_000_000.0,
        _ => f64::NAN,
    };
    match number.parse::<f64>() {
        Ok(n) if factor.is_finite() && n > 0.0 => Ok((n * factor).round() as u64),
        _ => Err(problem(
            Code::InvalidMaxSize,
            format!("{origin} `{text}` is not a size"),
            "write a number with an optional unit, e.g. `--max-size 3MiB`, `900KiB` or `1048576` (bytes, gzip)",
        )),
    }
}

/// `1.2% of the free plan's 3 MiB` style words for the summary.
pub fn share_of_limits(gzip_total: u64) -> String {
    let pct = |limit: u64| gzip_total as f64 * 100.0 / limit as f64;
    format!(
        "{:.1}% of the free plan's 3 MiB, {:.1}% of the paid plan's 10 MiB",
        pct(FREE_PLAN_LIMIT),
        pct(PAID_PLAN_LIMIT)
    )
}

/// The largest function bodies and data segments of a module, biggest first.
pub fn contributors(wasm: &[u8], top: usize) -> Vec<(String, u64)> {
    use wasmparser::{Name, Parser, Payload};
    let mut imported_funcs = 0u32;
    let mut bodies: Vec<(u32, u64)> = Vec::new();
    let mut data: Vec<(u32, u64)> = Vec::new();
    let mut func_names = std::collections::HashMap::new();
    let mut data_names = std::collections::HashMap::new();
    for payload in Parser::new(0).parse_all(wasm) {
        let Ok(payload) = payload else { break };
        match payload {
            Payload::ImportSection(reader) => {
                for import in reader.into_imports().flatten() {
                    if matches!(
                        import.ty,
                        wasmparser::TypeRef::Func(_) | wasmparser::TypeRef::FuncExact(_)
                    ) {
                        imported_funcs += 1;
                    }
                }
            }
            Payload::CodeSectionEntry(body) => {
                let index = imported_funcs + bodies.len() as u32;
                let range = body.range();
                bodies.push((index, range.end - range.start));
            }
            Payload::DataSection(reader) => {
                for (i, segment) in reader.into_iter().enumerate() {
                    if let Ok(segment) = segment {
                        data.push((i as u32, segment.data.len() as u64));
                    }
                }
            }
            Payload::CustomSection(section) => {
                if let wasmparser::KnownCustom::Name(reader) = section.as_known() {
                    for name in reader.into_iter().flatten() {
                        match name {
                            Name::Function(map) => {
                                func_names.extend(map.into_iter().flatten().map(|n| {
                                    (n.index, format!("{:#}", rustc_demangle::demangle(n.name)))
                                }))
                            }
                            Name::Data(map) => data_names.extend(
                                map.into_iter()
                                    .flatten()
                                    .map(|n| (n.index, n.name.to_string())),
                            ),
                            _ => {}
                        }
                    }
                }
            }
            _ => {}
        }
    }
    let mut all: Vec<(String, u64)> = bodies
        .into_iter()
        .map(|(i, len)| {
            (
                func_names
                    .get(&i)
                    .cloned()
                    .unwrap_or_else(|| format!("function #{i}")),
                len,
            )
        })
        .chain(data.into_iter().map(|(i, len)| {
            (
                data_names
                    .get(&i)
                    .map_or_else(|| format!("data segment #{i}"), |n| format!("data {n}")),
                len,
            )
        }))
        .collect();
    all.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    all.truncate(top);
    all
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_in_binary_and_decimal_units() {
        assert_eq!(parse("3MiB", "--max-size").unwrap(), 3 * 1024 * 1024);
        assert_eq!(parse("900 KiB", "--max-size").unwrap(), 900 * 1024);
        assert_eq!(parse("1.5MB", "--max-size").unwrap(), 1_500_000);
        assert_eq!(parse("1048576", "--max-size").unwrap(), 1_048_576);
        assert_eq!(parse("2k", "--max-size").unwrap(), 2048);
    }

    #[test]
    fn nonsense_sizes_say_how_to_write_one() {
        for bad in ["", "abc", "3 parsecs", "-1MiB", "0", "1.2.3MB"] {
            let err = parse(bad, "--max-size").unwrap_err().to_string();
            assert!(
                err.contains("is not a size") && err.contains("--max-size 3MiB"),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn contributors_are_named_from_the_name_section_biggest_first() {
        let wasm = wat::parse_str(
            r#"(module
                (import "env" "f" (func $imported))
                (func $small (result i32) i32.const 1)
                (func $big (result i32)
                    i32.const 1 i32.const 2 i32.add i32.const 3 i32.add i32.const 4 i32.add
                    i32.const 5 i32.add i32.const 6 i32.add i32.const 7 i32.add)
                (memory 1)
                (data $table (i32.const 0) "0123456789012345678901234567890123456789"))"#,
        )
        .unwrap();
        let top = contributors(&wasm, 10);
        assert_eq!(top[0].0, "data table");
        assert_eq!(top[0].1, 40);
        assert_eq!(top[1].0, "big");
        assert_eq!(top[2].0, "small");
        assert_eq!(contributors(&wasm, 1).len(), 1);
        assert!(contributors(b"not wasm", 10).is_empty());
    }
}
