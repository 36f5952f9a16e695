//! One pass over a module's bytes that collects every fact the verdicts need: exception-handling
//! opcode counts, tags and their payload types, exports and imports the recovery runtime relies
//! on, the producers and target-features custom sections, and which post-MVP features the module
//! uses (so the load check can name the feature a runtime lacks).
//!
//! The operator walk goes through wasmparser's `VisitOperator`, so counting costs no allocation
//! per instruction; only `try_table`, whose catch list wasmparser collects into a `Vec`, allocates.

use wasmparser::{
    AbstractHeapType, BinaryReader, BlockType, CompositeInnerType, ExternalKind, HeapType, Parser,
    Payload, RefType, TypeRef, ValType, VisitOperator, VisitSimdOperator,
};

use super::features::{Feature, FeatureSet};

/// How often each exception-handling instruction occurs in the code section.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EhCounts {
    /// Legacy `try` (0x06).
    pub try_: u64,
    /// Legacy `catch` (0x07).
    pub catch: u64,
    /// Legacy `catch_all` (0x19).
    pub catch_all: u64,
    /// Legacy `rethrow` (0x09).
    pub rethrow: u64,
    /// Legacy `delegate` (0x18).
    pub delegate: u64,
    /// Standard (exnref) `try_table` (0x1f).
    pub try_table: u64,
    /// Standard (exnref) `throw_ref` (0x0a).
    pub throw_ref: u64,
    /// `throw` (0x08), shared by both encodings.
    pub throw: u64,
}

impl EhCounts {
    /// Instructions that exist only in the legacy encoding.
    pub fn legacy(&self) -> u64 {
        self.try_ + self.catch + self.catch_all + self.rethrow + self.delegate
    }

    /// Instructions that exist only in the standard (exnref) encoding.
    pub fn exnref(&self) -> u64 {
        self.try_table + self.throw_ref
    }
}

/// An exception tag in the module's tag index space.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tag {
    /// `Some((module, name))` when the tag is imported rather than defined here.
    pub import: Option<(String, String)>,
    /// The tag's payload is exactly one `i32` and it returns nothing: the shape of Rust's (and
    /// C++'s) `__cpp_exception`, whose payload is a pointer to the exception object.
    pub i32_payload: bool,
    /// Names under which the module exports the tag.
    pub exports: Vec<String>,
}

/// An export the recovery runtime may look for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Export {
    pub name: String,
    pub kind: ExternalKind,
}

/// Everything [`scan`] learnt about a module.
#[derive(Debug, Clone, Default)]
pub struct ModuleFacts {
    pub eh: EhCounts,
    pub tags: Vec<Tag>,
    /// `throw` instructions whose tag is a locally defined `i32` tag (Rust panics being raised).
    pub rust_tag_throws: u64,
    pub exports: Vec<Export>,
    /// `(module, name)` of every imported tag, in import order.
    pub tag_imports: Vec<(String, String)>,
    /// Values of the producers section's `processed-by` field, `(tool, version)`.
    pub processed_by: Vec<(String, String)>,
    /// The `target_features` custom section, `None` when the module has none (wasm-opt and some
    /// tools drop it). Entries keep their prefix: `+exception-handling`, `-simd128`.
    pub target_features: Option<Vec<String>>,
    /// Custom sections the check reads that could not be parsed (`"name: error"`); they are
    /// treated as absent.
    pub malformed_custom_sections: Vec<String>,
    pub features: FeatureSet,
    pub functions: u64,
    pub instructions: u64,
}

impl ModuleFacts {
    pub fn export(&self, name: &str) -> Option<&Export> {
        self.exports.iter().find(|e| e.name == name)
    }

    pub fn wasm_bindgen_version(&self) -> Option<&str> {
        self.processed_by
            .iter()
            .find(|(tool, _)| tool == "wasm-bindgen")
            .map(|(_, v)| v.as_str())
    }

    /// Whether the target-features section lists `+name`; `None` when there is no section.
    pub fn target_feature(&self, name: &str) -> Option<bool> {
        self.target_features
            .as_ref()
            .map(|list| list.iter().any(|f| f.strip_prefix('+') == Some(name)))
    }
}

/// A module the parser could not decode, with the byte offset where decoding stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError {
    pub message: String,
    pub offset: u64,
}

impl From<wasmparser::BinaryReaderError> for DecodeError {
    fn from(e: wasmparser::BinaryReaderError) -> Self {
        // wasmparser pretty-prints some messages over several lines (the magic number as
        // a byte list); a report line stays one line.
        let message = e
            .message()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .replace("[ ", "[")
            .replace(", ]", "]");
        DecodeError {
            message,
            offset: e.offset(),
        }
    }
}

/// What the code walk needs to know about a type index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TypeShape {
    /// `(func (param i32))`: the payload shape of Rust's exception tag.
    FuncI32ToNothing,
    Func,
    Other,
}

/// Decode the whole module once and collect its facts.
pub fn scan(wasm: &[u8]) -> Result<ModuleFacts, DecodeError> {
    let mut facts = ModuleFacts::default();
    let mut types: Vec<TypeShape> = Vec::new();
    // For each tag index: is it a locally defined tag with Rust's payload shape?
    let mut rust_tag: Vec<bool> = Vec::new();
    let mut memories = 0u32;
    let mut tables = 0u32;
    let mut walker = OpWalker::default();

    for payload in Parser::new(0).parse_all(wasm) {
        match payload? {
            Payload::Version {
                encoding: wasmparser::Encoding::Component,
                ..
            } => {
                return Err(DecodeError {
                    message: "this is a WebAssembly component, not a core module".into(),
                    offset: 0,
                });
            }
            Payload::TypeSection(reader) => {
                for group in reader {
                    for sub in group?.types() {
                        let shape = match &sub.composite_type.inner {
                            CompositeInnerType::Func(f) => {
                                for ty in f.params().iter().chain(f.results()) {
                                    note_val_type(ty, &mut facts.features);
                                }
                                if f.results().len() > 1 {
                                    facts.features.insert(Feature::Multivalue);
                                }
                                if f.params() == [ValType::I32] && f.results().is_empty() {
                                    TypeShape::FuncI32ToNothing
                                } else {
                                    TypeShape::Func
                                }
                            }
                            CompositeInnerType::Array(_) | CompositeInnerType::Struct(_) => {
                                facts.features.insert(Feature::Gc);
                                TypeShape::Other
                            }
                            CompositeInnerType::Cont(_) => {
                                facts.features.insert(Feature::StackSwitching);
                                TypeShape::Other
                            }
                        };
                        if sub.composite_type.shared {
                            facts.features.insert(Feature::SharedEverythingThreads);
                        }
                        types.push(shape);
                    }
                }
            }
            Payload::ImportSection(reader) => {
                for import in reader.into_imports() {
                    let import = import?;
                    match import.ty {
                        TypeRef::Tag(tag) => {
                            facts
                                .tag_imports
                                .push((import.module.to_string(), import.name.to_string()));
                            facts.tags.push(Tag {
                                import: Some((import.module.to_string(), import.name.to_string())),
                                i32_payload: types.get(tag.func_type_idx as usize)
                                    == Some(&TypeShape::FuncI32ToNothing),
                                exports: Vec::new(),
                            });
                            // An imported tag is not Rust's own: wasm-bindgen turns rustc's
                            // imported `env.__cpp_exception` into a local one.
                            rust_tag.push(false);
                        }
                        TypeRef::Global(g) => {
                            if g.mutable {
                                facts.features.insert(Feature::MutableGlobals);
                            }
                            note_val_type(&g.content_type, &mut facts.features);
                        }
                        TypeRef::Memory(m) => {
                            memories += 1;
                            note_memory(&m, &mut facts.features);
                        }
                        TypeRef::Table(t) => {
                            tables += 1;
                            note_table(&t, &mut facts.features);
                        }
                        TypeRef::Func(_) | TypeRef::FuncExact(_) => {}
                    }
                }
            }
            Payload::TableSection(reader) => {
                for table in reader {
                    tables += 1;
                    note_table(&table?.ty, &mut facts.features);
                }
            }
            Payload::MemorySection(reader) => {
                for memory in reader {
                    memories += 1;
                    note_memory(&memory?, &mut facts.features);
                }
            }
            Payload::TagSection(reader) => {
                for tag in reader {
                    let tag = tag?;
                    let i32_payload =
                        types.get(tag.func_type_idx as usize) == Some(&TypeShape::FuncI32ToNothing);
                    facts.tags.push(Tag {
                        import: None,
                        i32_payload,
                        exports: Vec::new(),
                    });
                    rust_tag.push(i32_payload);
                }
            }
            Payload::GlobalSection(reader) => {
                for global in reader {
                    let global = global?;
                    note_val_type(&global.ty.content_type, &mut facts.features);
                    if global.ty.shared {
                        facts.features.insert(Feature::SharedEverythingThreads);
                    }
                    note_const_expr(global.init_expr.get_binary_reader(), &mut facts.features)?;
                }
            }
            Payload::ExportSection(reader) => {
                for export in reader {
                    let export = export?;
                    if export.kind == ExternalKind::Tag {
                        if let Some(tag) = facts.tags.get_mut(export.index as usize) {
                            tag.exports.push(export.name.to_string());
                        }
                    }
                    facts.exports.push(Export {
                        name: export.name.to_string(),
                        kind: export.kind,
                    });
                }
            }
            Payload::DataSection(reader) => {
                for data in reader {
                    match data?.kind {
                        wasmparser::DataKind::Passive => facts.features.insert(Feature::BulkMemory),
                        wasmparser::DataKind::Active {
                            memory_index,
                            offset_expr,
                        } => {
                            if memory_index != 0 {
                                facts.features.insert(Feature::Multimemory);
                            }
                            note_const_expr(offset_expr.get_binary_reader(), &mut facts.features)?;
                        }
                    }
                }
            }
            Payload::CodeSectionStart { .. } => {
                // Every tag is declared before the code section, so the lookup table is final.
                walker.rust_tag = std::mem::take(&mut rust_tag);
            }
            Payload::CodeSectionEntry(body) => {
                facts.functions += 1;
                let mut locals = body.get_locals_reader()?;
                for _ in 0..locals.get_count() {
                    let (_, ty) = locals.read()?;
                    note_val_type(&ty, &mut walker.features);
                }
                let mut ops = wasmparser::OperatorsReader::new(locals.get_binary_reader());
                while !ops.eof() {
                    ops.visit_operator(&mut walker)?;
                }
                ops.finish()?;
            }
            // Engines ignore the contents of custom sections, so a malformed one must not make
            // the module unreadable: it is noted and otherwise treated as absent.
            Payload::CustomSection(section) => match section.name() {
                "producers" => match read_processed_by(section.data_reader()) {
                    Ok(tools) => facts.processed_by.extend(tools),
                    Err(e) => facts
                        .malformed_custom_sections
                        .push(format!("producers: {}", e.message)),
                },
                "target_features" => match read_target_features(section.data_reader()) {
                    Ok(list) => facts.target_features = Some(list),
                    Err(e) => facts
                        .malformed_custom_sections
                        .push(format!("target_features: {}", e.message)),
                },
                _ => {}
            },
            _ => {}
        }
    }

    if memories > 1 {
        facts.features.insert(Feature::Multimemory);
    }
    if tables > 1 {
        facts.features.insert(Feature::ReferenceTypes);
    }
    facts.eh = walker.eh;
    facts.rust_tag_throws = walker.rust_tag_throws;
    facts.instructions = walker.instructions;
    facts.features.extend(walker.features);
    if facts.eh.legacy() > 0 {
        facts.features.insert(Feature::LegacyExceptions);
    }
    if facts.eh.exnref() > 0 {
        facts.features.insert(Feature::Exnref);
    }
    Ok(facts)
}

/// The `processed-by` field of the producers section, `(tool, version)` pairs.
fn read_processed_by(reader: BinaryReader<'_>) -> Result<Vec<(String, String)>, DecodeError> {
    let mut out = Vec::new();
    for field in wasmparser::ProducersSectionReader::new(reader)? {
        let field = field?;
        if field.name == "processed-by" {
            for value in field.values {
                let value = value?;
                out.push((value.name.to_string(), value.version.to_string()));
            }
        }
    }
    Ok(out)
}

/// The `target_features` section: a vector of (prefix byte, feature name) pairs, as written by
/// LLVM's wasm backend. wasmparser has no reader for it.
fn read_target_features(mut reader: BinaryReader<'_>) -> Result<Vec<String>, DecodeError> {
    let count = reader.read_var_u32()?;
    let mut out = Vec::new();
    for _ in 0..count {
        let prefix = reader.read_u8()?;
        let name = reader.read_string()?;
        out.push(format!("{}{name}", prefix as char));
    }
    Ok(out)
}

fn note_memory(m: &wasmparser::MemoryType, features: &mut FeatureSet) {
    if m.memory64 {
        features.insert(Feature::Memory64);
    }
    if m.shared {
        features.insert(Feature::Atomics);
    }
    if m.page_size_log2.is_some() {
        features.insert(Feature::CustomPageSizes);
    }
}

fn note_table(t: &wasmparser::TableType, features: &mut FeatureSet) {
    if t.element_type != RefType::FUNCREF {
        note_ref_type(&t.element_type, features);
        features.insert(Feature::ReferenceTypes);
    }
    if t.table64 {
        features.insert(Feature::Memory64);
    }
    if t.shared {
        features.insert(Feature::SharedEverythingThreads);
    }
}

fn note_val_type(ty: &ValType, features: &mut FeatureSet) {
    match ty {
        ValType::I32 | ValType::I64 | ValType::F32 | ValType::F64 => {}
        ValType::V128 => features.insert(Feature::Simd128),
        ValType::Ref(r) => note_ref_type(r, features),
    }
}

fn note_ref_type(r: &RefType, features: &mut FeatureSet) {
    note_heap_type(r.heap_type(), r.is_nullable(), features);
}

fn note_heap_type(heap: HeapType, nullable: bool, features: &mut FeatureSet) {
    match heap {
        HeapType::Abstract { shared, ty } => {
            if shared {
                features.insert(Feature::SharedEverythingThreads);
            }
            match ty {
                AbstractHeapType::Func | AbstractHeapType::Extern => {
                    features.insert(Feature::ReferenceTypes);
                    if !nullable {
                        features.insert(Feature::FunctionReferences);
                    }
                }
                AbstractHeapType::Exn | AbstractHeapType::NoExn => features.insert(Feature::Exnref),
                AbstractHeapType::Cont | AbstractHeapType::NoCont => {
                    features.insert(Feature::StackSwitching)
                }
                // The bottom types too (`ref.null noextern`, which wasm-bindgen's exnref catch
                // wrappers use): V8 before 11.9 (Node 20) rejects them as GC types.
                AbstractHeapType::Any
                | AbstractHeapType::None
                | AbstractHeapType::NoExtern
                | AbstractHeapType::NoFunc
                | AbstractHeapType::Eq
                | AbstractHeapType::Struct
                | AbstractHeapType::Array
                | AbstractHeapType::I31 => features.insert(Feature::Gc),
            }
        }
        // Typed references (`(ref $t)`) came with function-references; GC builds on them.
        HeapType::Concrete(_) | HeapType::Exact(_) => features.insert(Feature::FunctionReferences),
    }
}

/// Constant expressions beyond a single constant or `global.get` need extended-const.
fn note_const_expr(reader: BinaryReader<'_>, features: &mut FeatureSet) -> Result<(), DecodeError> {
    use wasmparser::Operator as Op;
    let mut ops = wasmparser::OperatorsReader::new(reader);
    while !ops.eof() {
        match ops.read()? {
            Op::I32Add | Op::I32Sub | Op::I32Mul | Op::I64Add | Op::I64Sub | Op::I64Mul => {
                features.insert(Feature::ExtendedConst)
            }
            Op::V128Const { .. } => features.insert(Feature::Simd128),
            Op::RefNull { hty } => note_heap_type(hty, true, features),
            Op::RefFunc { .. } => features.insert(Feature::ReferenceTypes),
            _ => {}
        }
    }
    Ok(())
}

/// Counts exception-handling instructions and the proposals the other instructions belong to.
#[derive(Default)]
struct OpWalker {
    eh: EhCounts,
    rust_tag: Vec<bool>,
    rust_tag_throws: u64,
    features: FeatureSet,
    instructions: u64,
}

impl OpWalker {
    #[inline(always)]
    fn op(&mut self) {
        self.instructions += 1;
    }

    #[inline(always)]
    fn uses(&mut self, feature: Feature) {
        self.instructions += 1;
        self.features.insert(feature);
    }

    #[inline(always)]
    fn block_type(&mut self, ty: BlockType) {
        self.instructions += 1;
        match ty {
            BlockType::Empty => {}
            BlockType::Type(t) => note_val_type(&t, &mut self.features),
            // A block with a type index may take parameters or return several values.
            BlockType::FuncType(_) => self.features.insert(Feature::Multivalue),
        }
    }
}

/// Maps a wasmparser proposal group to the feature it needs at load time, `None` for the MVP.
macro_rules! proposal_feature {
    (mvp) => {
        None
    };
    (sign_extension) => {
        Some(Feature::SignExt)
    };
    (saturating_float_to_int) => {
        Some(Feature::NontrappingFptoint)
    };
    (bulk_memory) => {
        Some(Feature::BulkMemory)
    };
    (reference_types) => {
        Some(Feature::ReferenceTypes)
    };
    (tail_call) => {
        Some(Feature::TailCall)
    };
    (threads) => {
        Some(Feature::Atomics)
    };
    (simd) => {
        Some(Feature::Simd128)
    };
    (relaxed_simd) => {
        Some(Feature::RelaxedSimd)
    };
    (gc) => {
        Some(Feature::Gc)
    };
    (function_references) => {
        Some(Feature::FunctionReferences)
    };
    (exceptions) => {
        Some(Feature::Exnref)
    };
    (legacy_exceptions) => {
        Some(Feature::LegacyExceptions)
    };
    (memory_control) => {
        Some(Feature::MemoryControl)
    };
    (shared_everything_threads) => {
        Some(Feature::SharedEverythingThreads)
    };
    (stack_switching) => {
        Some(Feature::StackSwitching)
    };
    (wide_arithmetic) => {
        Some(Feature::WideArithmetic)
    };
    (custom_descriptors) => {
        Some(Feature::CustomDescriptors)
    };
    (acquire_release_atomics) => {
        Some(Feature::AcquireReleaseAtomics)
    };
}

/// Generates one `visit_*` method per operator. The exception-handling instructions, block types
/// and `call_indirect` get their own arms (listed first, so they win); every other operator only
/// records the proposal it belongs to.
macro_rules! define_visit {
    ($( @$proposal:ident $op:ident $({ $($arg:ident: $argty:ty),* })? => $visit:ident ($($ann:tt)*))*) => {
        $( define_visit!(one @$proposal $op $({ $($arg: $argty),* })? => $visit); )*
    };
    (one @$p:ident Try { $($arg:ident: $argty:ty),* } => $visit:ident) => {
        fn $visit(&mut self, blockty: BlockType) { self.block_type(blockty); self.eh.try_ += 1; }
    };
    (one @$p:ident Catch { $($arg:ident: $argty:ty),* } => $visit:ident) => {
        fn $visit(&mut self, _tag_index: u32) { self.op(); self.eh.catch += 1; }
    };
    (one @$p:ident CatchAll => $visit:ident) => {
        fn $visit(&mut self) { self.op(); self.eh.catch_all += 1; }
    };
    (one @$p:ident Rethrow { $($arg:ident: $argty:ty),* } => $visit:ident) => {
        fn $visit(&mut self, _relative_depth: u32) { self.op(); self.eh.rethrow += 1; }
    };
    (one @$p:ident Delegate { $($arg:ident: $argty:ty),* } => $visit:ident) => {
        fn $visit(&mut self, _relative_depth: u32) { self.op(); self.eh.delegate += 1; }
    };
    (one @$p:ident TryTable { $($arg:ident: $argty:ty),* } => $visit:ident) => {
        fn $visit(&mut self, try_table: wasmparser::TryTable) {
            self.block_type(try_table.ty);
            self.eh.try_table += 1;
        }
    };
    (one @$p:ident ThrowRef => $visit:ident) => {
        fn $visit(&mut self) { self.op(); self.eh.throw_ref += 1; }
    };
    (one @$p:ident Throw { $($arg:ident: $argty:ty),* } => $visit:ident) => {
        fn $visit(&mut self, tag_index: u32) {
            self.op();
            self.eh.throw += 1;
            if self.rust_tag.get(tag_index as usize).copied().unwrap_or(false) {
                self.rust_tag_throws += 1;
            }
        }
    };
    (one @$p:ident Block { $($arg:ident: $argty:ty),* } => $visit:ident) => {
        fn $visit(&mut self, blockty: BlockType) { self.block_type(blockty); }
    };
    (one @$p:ident Loop { $($arg:ident: $argty:ty),* } => $visit:ident) => {
        fn $visit(&mut self, blockty: BlockType) { self.block_type(blockty); }
    };
    (one @$p:ident If { $($arg:ident: $argty:ty),* } => $visit:ident) => {
        fn $visit(&mut self, blockty: BlockType) { self.block_type(blockty); }
    };
    (one @$p:ident CallIndirect { $($arg:ident: $argty:ty),* } => $visit:ident) => {
        fn $visit(&mut self, _type_index: u32, table_index: u32) {
            // Indirect calls through any table but the first need reference-types.
            if table_index != 0 { self.uses(Feature::ReferenceTypes) } else { self.op() }
        }
    };
    (one @$p:ident RefNull { $($arg:ident: $argty:ty),* } => $visit:ident) => {
        fn $visit(&mut self, hty: wasmparser::HeapType) {
            self.uses(Feature::ReferenceTypes);
            note_heap_type(hty, true, &mut self.features);
        }
    };
    (one @$p:ident TypedSelect { $($arg:ident: $argty:ty),* } => $visit:ident) => {
        fn $visit(&mut self, ty: ValType) {
            self.uses(Feature::ReferenceTypes);
            note_val_type(&ty, &mut self.features);
        }
    };
    (one @mvp $op:ident $({ $($arg:ident: $argty:ty),* })? => $visit:ident) => {
        #[inline(always)]
        fn $visit(&mut self $($(, _: $argty)*)?) { self.op(); }
    };
    (one @$proposal:ident $op:ident $({ $($arg:ident: $argty:ty),* })? => $visit:ident) => {
        #[inline(always)]
        fn $visit(&mut self $($(, _: $argty)*)?) {
            if let Some(feature) = proposal_feature!($proposal) { self.uses(feature) } else { self.op() }
        }
    };
}

impl<'a> VisitOperator<'a> for OpWalker {
    type Output = ();

    fn simd_visitor(&mut self) -> Option<&mut dyn VisitSimdOperator<'a, Output = Self::Output>> {
        Some(self)
    }

    wasmparser::for_each_visit_operator!(define_visit);
}

impl<'a> VisitSimdOperator<'a> for OpWalker {
    wasmparser::for_each_visit_simd_operator!(define_visit);
}
