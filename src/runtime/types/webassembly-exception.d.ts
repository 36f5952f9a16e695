// `WebAssembly.Exception` (exception handling), which TypeScript's libraries do not declare yet.
declare namespace WebAssembly {
  class Exception {
    is(tag: unknown): boolean;
    getArg(tag: unknown, index: number): unknown;
  }
}
