/**
 * Node module hooks (module.register) that load `.ts` / `.mts` files by transpiling them with
 * the TypeScript compiler's transpileModule: types are erased, nothing is type-checked (the
 * user's own `tsc` does that). Kept as source text: the hooks run on Node's loader thread from a
 * data: URL, so they cannot import this package; `initialize` receives the compiler's URL.
 * Relative `./x.js` imports from a `.ts` file fall back to `./x.ts`, the TypeScript convention.
 */
export const TS_HOOKS_SOURCE = `
let ts;
export async function initialize(data) {
  const m = await import(data.typescript);
  ts = m.default ?? m;
}
const TS = /\\.m?ts$/;
export async function resolve(specifier, context, next) {
  try {
    return await next(specifier, context);
  } catch (e) {
    const parent = context.parentURL ?? '';
    if (TS.test(parent) && /^\\.\\.?\\//.test(specifier) && /\\.m?js$/.test(specifier)) {
      return next(specifier.replace(/js$/, 'ts'), context);
    }
    throw e;
  }
}
export async function load(url, context, next) {
  if (!url.startsWith('file:') || !TS.test(url)) return next(url, context);
  const { readFile } = await import('node:fs/promises');
  const source = await readFile(new URL(url), 'utf8');
  const out = ts.transpileModule(source, {
    fileName: url,
    compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022, inlineSourceMap: true, inlineSources: true },
  });
  return { format: 'module', source: out.outputText, shortCircuit: true };
}
`;
