//! Post-MVP WebAssembly features, which of them each target runtime can load, and the matching
//! wasmparser validator configuration.
//!
//! Feature names follow LLVM's wasm target-feature names (what users pass to
//! `-Ctarget-feature`), with `legacy-exceptions` and `exnref` telling the two encodings of
//! exception handling apart. The runtime tables are deliberately conservative: a feature is listed
//! for a runtime only when its V8 ships it enabled by default.

use wasmparser::WasmFeatures;

use crate::model::TargetRuntime;

/// A post-MVP feature a module can use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Feature {
    LegacyExceptions,
    Exnref,
    MutableGlobals,
    NontrappingFptoint,
    SignExt,
    Multivalue,
    ReferenceTypes,
    BulkMemory,
    Simd128,
    RelaxedSimd,
    Atomics,
    TailCall,
    ExtendedConst,
    Gc,
    FunctionReferences,
    Multimemory,
    Memory64,
    WideArithmetic,
    StackSwitching,
    CustomDescriptors,
    SharedEverythingThreads,
    MemoryControl,
    AcquireReleaseAtomics,
    CustomPageSizes,
}

impl Feature {
    pub const ALL: [Feature; 24] = [
        Feature::LegacyExceptions,
        Feature::Exnref,
        Feature::MutableGlobals,
        Feature::NontrappingFptoint,
        Feature::SignExt,
        Feature::Multivalue,
        Feature::ReferenceTypes,
        Feature::BulkMemory,
        Feature::Simd128,
        Feature::RelaxedSimd,
        Feature::Atomics,
        Feature::TailCall,
        Feature::ExtendedConst,
        Feature::Gc,
        Feature::FunctionReferences,
        Feature::Multimemory,
        Feature::Memory64,
        Feature::WideArithmetic,
        Feature::StackSwitching,
        Feature::CustomDescriptors,
        Feature::SharedEverythingThreads,
        Feature::MemoryControl,
        Feature::AcquireReleaseAtomics,
        Feature::CustomPageSizes,
    ];

    /// The stable name used in reports and JSON.
    pub fn name(self) -> &'static str {
        match self {
            Feature::LegacyExceptions => "legacy-exceptions",
            Feature::Exnref => "exnref",
            Feature::MutableGlobals => "mutable-globals",
            Feature::NontrappingFptoint => "nontrapping-fptoint",
            Feature::SignExt => "sign-ext",
            Feature::Multivalue => "multivalue",
            Feature::ReferenceTypes => "reference-types",
            Feature::BulkMemory => "bulk-memory",
            Feature::Simd128 => "simd128",
            Feature::RelaxedSimd => "relaxed-simd",
            Feature::Atomics => "atomics",
            Feature::TailCall => "tail-call",
            Feature::ExtendedConst => "extended-const",
            Feature::Gc => "gc",
            Feature::FunctionReferences => "function-references",
            Feature::Multimemory => "multimemory",
            Feature::Memory64 => "memory64",
            Feature::WideArithmetic => "wide-arithmetic",
            Feature::StackSwitching => "stack-switching",
            Feature::CustomDescriptors => "custom-descriptors",
            Feature::SharedEverythingThreads => "shared-everything-threads",
            Feature::MemoryControl => "memory-control",
            Feature::AcquireReleaseAtomics => "acquire-release-atomics",
            Feature::CustomPageSizes => "custom-page-sizes",
        }
    }

    fn bit(self) -> u32 {
        1 << (self as u32)
    }
}

/// A set of [`Feature`]s, iterated in declaration order.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FeatureSet(u32);

impl FeatureSet {
    pub const EMPTY: FeatureSet = FeatureSet(0);

    pub fn of(features: &[Feature]) -> FeatureSet {
        let mut set = FeatureSet::EMPTY;
        for &f in features {
            set.insert(f);
        }
        set
    }

    #[inline(always)]
    pub fn insert(&mut self, feature: Feature) {
        self.0 |= feature.bit();
    }

    pub fn extend(&mut self, other: FeatureSet) {
        self.0 |= other.0;
    }

    pub fn contains(self, feature: Feature) -> bool {
        self.0 & feature.bit() != 0
    }

    pub fn difference(self, other: FeatureSet) -> FeatureSet {
        FeatureSet(self.0 & !other.0)
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    pub fn iter(self) -> impl Iterator<Item = Feature> {
        Feature::ALL.into_iter().filter(move |f| self.contains(*f))
    }

    pub fn names(self) -> Vec<&'static str> {
        self.iter().map(Feature::name).collect()
    }
}

/// What every runtime we target loads: the features rustc's wasm32 targets turn on by default,
/// plus SIMD, threads and tail calls, all on by default since V8 11.2 (Node 20).
const BASELINE: &[Feature] = &[
    Feature::LegacyExceptions,
    Feature::MutableGlobals,
    Feature::NontrappingFptoint,
    Feature::SignExt,
    Feature::Multivalue,
    Feature::ReferenceTypes,
    Feature::BulkMemory,
    Feature::Simd128,
    Feature::Atomics,
    Feature::TailCall,
];

/// Added by Node 22 (V8 12.4): exnref, relaxed SIMD, extended-const, GC, typed function
/// references and multiple memories.
const SINCE_NODE22: &[Feature] = &[
    Feature::Exnref,
    Feature::RelaxedSimd,
    Feature::ExtendedConst,
    Feature::Gc,
    Feature::FunctionReferences,
    Feature::Multimemory,
];

/// Added by Node 24 (V8 13.6), and present in current workerd: 64-bit memories.
const SINCE_NODE24: &[Feature] = &[Feature::Memory64];

/// The features `runtime` loads.
pub fn supported(runtime: TargetRuntime) -> FeatureSet {
    let mut set = FeatureSet::of(BASELINE);
    if runtime != TargetRuntime::Node20 {
        set.extend(FeatureSet::of(SINCE_NODE22));
    }
    if matches!(runtime, TargetRuntime::Node24 | TargetRuntime::Workerd) {
        set.extend(FeatureSet::of(SINCE_NODE24));
    }
    set
}

/// The validator configuration matching [`supported`].
///
/// wasmparser has no switch for exnref alone: its `EXCEPTIONS` flag also gates the tag section
/// and `throw`, which the legacy encoding needs too. So the validator always allows both
/// encodings, and the load check rejects exnref on Node 20 (and mixed modules everywhere) from
/// the opcode counts instead.
pub fn validator_features(runtime: TargetRuntime) -> WasmFeatures {
    let supported = supported(runtime);
    let mut wf = WasmFeatures::FLOATS
        | WasmFeatures::GC_TYPES
        | WasmFeatures::EXCEPTIONS
        | WasmFeatures::LEGACY_EXCEPTIONS
        | WasmFeatures::MUTABLE_GLOBAL
        | WasmFeatures::SATURATING_FLOAT_TO_INT
        | WasmFeatures::SIGN_EXTENSION
        | WasmFeatures::MULTI_VALUE
        | WasmFeatures::REFERENCE_TYPES
        | WasmFeatures::BULK_MEMORY
        | WasmFeatures::SIMD
        | WasmFeatures::THREADS
        | WasmFeatures::TAIL_CALL;
    let optional = [
        (Feature::RelaxedSimd, WasmFeatures::RELAXED_SIMD),
        (Feature::ExtendedConst, WasmFeatures::EXTENDED_CONST),
        (Feature::Gc, WasmFeatures::GC),
        (
            Feature::FunctionReferences,
            WasmFeatures::FUNCTION_REFERENCES,
        ),
        (Feature::Multimemory, WasmFeatures::MULTI_MEMORY),
        (Feature::Memory64, WasmFeatures::MEMORY64),
        (Feature::WideArithmetic, WasmFeatures::WIDE_ARITHMETIC),
        (Feature::StackSwitching, WasmFeatures::STACK_SWITCHING),
        (Feature::CustomDescriptors, WasmFeatures::CUSTOM_DESCRIPTORS),
        (
            Feature::SharedEverythingThreads,
            WasmFeatures::SHARED_EVERYTHING_THREADS,
        ),
        (Feature::MemoryControl, WasmFeatures::MEMORY_CONTROL),
        (
            Feature::AcquireReleaseAtomics,
            WasmFeatures::ACQUIRE_RELEASE_ATOMICS,
        ),
        (Feature::CustomPageSizes, WasmFeatures::CUSTOM_PAGE_SIZES),
    ];
    for (feature, flag) in optional {
        if supported.contains(feature) {
            wf |= flag;
        }
    }
    wf
}

/// The oldest release of a runtime family that loads `feature`, for fix lines
/// ("use --runtime node22").
pub fn first_runtime_with(feature: Feature) -> Option<TargetRuntime> {
    [
        TargetRuntime::Node20,
        TargetRuntime::Node22,
        TargetRuntime::Node24,
    ]
    .into_iter()
    .find(|r| supported(*r).contains(feature))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node20_lacks_exnref_but_has_legacy_eh() {
        let node20 = supported(TargetRuntime::Node20);
        assert!(!node20.contains(Feature::Exnref));
        assert!(node20.contains(Feature::LegacyExceptions));
        for runtime in [
            TargetRuntime::Node22,
            TargetRuntime::Node24,
            TargetRuntime::Workerd,
        ] {
            assert!(supported(runtime).contains(Feature::Exnref), "{runtime:?}");
            assert!(
                supported(runtime).contains(Feature::LegacyExceptions),
                "{runtime:?}"
            );
        }
    }

    #[test]
    fn unshipped_proposals_load_nowhere() {
        for runtime in [
            TargetRuntime::Node20,
            TargetRuntime::Node22,
            TargetRuntime::Node24,
            TargetRuntime::Workerd,
        ] {
            let wf = validator_features(runtime);
            assert!(!wf.contains(WasmFeatures::STACK_SWITCHING));
            assert!(!wf.contains(WasmFeatures::COMPONENT_MODEL));
            assert!(!supported(runtime).contains(Feature::WideArithmetic));
        }
        assert!(!validator_features(TargetRuntime::Node20).contains(WasmFeatures::GC));
        assert!(validator_features(TargetRuntime::Workerd).contains(WasmFeatures::MEMORY64));
    }

    #[test]
    fn feature_names_are_unique_and_sets_iterate_in_order() {
        let mut names: Vec<_> = Feature::ALL.iter().map(|f| f.name()).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), Feature::ALL.len());
        let set = FeatureSet::of(&[Feature::Gc, Feature::Exnref]);
        assert_eq!(set.names(), ["exnref", "gc"]);
        assert_eq!(
            first_runtime_with(Feature::Exnref),
            Some(TargetRuntime::Node22)
        );
        assert_eq!(first_runtime_with(Feature::WideArithmetic), None);
    }
}
