// The shapes of answers from outside (Consul), declared with zod's tree-shakable build.
// Use as `import * as z from ".../answer-schema.ts"`.
//
// `zod/mini` instead of `zod`: the classic `z` namespace keeps all of zod in a bundle (600 KB of
// the templater's 1.3 MB, parsed and held in memory at every start); the functional API keeps
// only what the shapes use. Mini has no messages of its own, so the English ones are set here,
// once, for every schema: a malformed answer's log line still says what was wrong
// ("Invalid input: expected number, received string").

import { config, type ZodMiniType } from "zod/mini";
import en from "zod/v4/locales/en.js";

config(en());

// Named, not the namespace: a namespace object passed on keeps every export of zod alive.
export { array, nullable, number, object, optional, record, string } from "zod/mini";

/** A schema as classifyAnswer uses it: decode, or say where and why not. */
export type AnswerSchema<T> = ZodMiniType<T>;
