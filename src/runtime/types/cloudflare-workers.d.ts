// The part of workerd's `cloudflare:workers` module the runtime uses, for `tsc --checkJs`.
declare module "cloudflare:workers" {
  export abstract class WorkerEntrypoint<Env = unknown> {
    protected ctx: unknown;
    protected env: Env;
    constructor(ctx: unknown, env: Env);
  }
}
