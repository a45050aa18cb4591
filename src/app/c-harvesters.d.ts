// The C examples compiled by vite-c-harvesters.ts at dev and build time.
declare module 'virtual:c-harvesters' {
  export const C_EXAMPLES: readonly { readonly name: string; readonly base64: string; readonly threads: number | null }[];
  export const C_EXAMPLES_NOTE: string | null;
}
