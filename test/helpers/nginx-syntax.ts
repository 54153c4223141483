// A reader for nginx's configuration syntax, following ngx_conf_read_token: words separated by
// whitespace, `;` ends a directive, `{ }` delimit blocks, `#` at the start of a word comments out
// the rest of the line, quoted words keep spaces and take backslash escapes. Tests use it to
// prove that a rendered config has the structure the template meant, whatever Consul held.

export interface Directive {
  name: string;
  args: string[];
  /** Present for block directives (`upstream x { ... }`). */
  block?: Directive[];
  line: number;
}

export class NginxSyntaxError extends Error {}

type Tok = { kind: "word"; text: string; line: number } | { kind: ";" | "{" | "}"; line: number };

function tokenize(src: string): Tok[] {
  const out: Tok[] = [];
  let i = 0;
  let line = 1;
  const isSpace = (c: string) => c === " " || c === "\t" || c === "\r" || c === "\n";
  while (i < src.length) {
    const c = src[i]!;
    if (c === "\n") line++;
    if (isSpace(c)) {
      i++;
      continue;
    }
    if (c === "#") {
      while (i < src.length && src[i] !== "\n") i++;
      continue;
    }
    if (c === ";" || c === "{" || c === "}") {
      out.push({ kind: c, line });
      i++;
      continue;
    }
    if (c === '"' || c === "'") {
      const start = line;
      let text = "";
      i++;
      for (;;) {
        if (i >= src.length) throw new NginxSyntaxError(`unterminated ${c} string from line ${start}`);
        const d = src[i]!;
        if (d === "\n") line++;
        if (d === "\\" && i + 1 < src.length) {
          const e = src[i + 1]!;
          text +=
            e === '"' || e === "'" || e === "\\"
              ? e
              : e === "t"
                ? "\t"
                : e === "r"
                  ? "\r"
                  : e === "n"
                    ? "\n"
                    : `\\${e}`;
          i += 2;
          continue;
        }
        if (d === c) {
          i++;
          break;
        }
        text += d;
        i++;
      }
      const next = src[i];
      if (next !== undefined && !isSpace(next) && next !== ";" && next !== "{" && next !== "}") {
        throw new NginxSyntaxError(`unexpected "${next}" after a quoted string on line ${line}`);
      }
      out.push({ kind: "word", text, line: start });
      continue;
    }
    let text = "";
    const start = line;
    while (i < src.length) {
      const d = src[i]!;
      if (isSpace(d) || d === ";" || d === "}") break;
      // `{` ends a word except in `${name}`, as in nginx.
      if (d === "{" && !text.endsWith("$")) break;
      if (d === "\\" && i + 1 < src.length) {
        text += src[i + 1];
        i += 2;
        continue;
      }
      if (d === "{") {
        const close = src.indexOf("}", i);
        if (close < 0) throw new NginxSyntaxError(`unterminated \${ on line ${line}`);
        text += src.slice(i, close + 1);
        i = close + 1;
        continue;
      }
      text += d;
      i++;
    }
    out.push({ kind: "word", text, line: start });
  }
  return out;
}

/** Parses a config file into directives; throws NginxSyntaxError where nginx would refuse the syntax. */
export function parseNginx(src: string): Directive[] {
  const toks = tokenize(src);
  let pos = 0;
  const block = (depth: number): Directive[] => {
    const list: Directive[] = [];
    for (;;) {
      const t = toks[pos];
      if (t === undefined) {
        if (depth > 0) throw new NginxSyntaxError("unexpected end of file, expecting }");
        return list;
      }
      if (t.kind === "}") {
        if (depth === 0) throw new NginxSyntaxError(`unexpected } on line ${t.line}`);
        pos++;
        return list;
      }
      if (t.kind !== "word") throw new NginxSyntaxError(`unexpected ${t.kind} on line ${t.line}`);
      const words: string[] = [];
      while (toks[pos]?.kind === "word") words.push((toks[pos++] as { text: string }).text);
      const end = toks[pos++];
      if (end === undefined) throw new NginxSyntaxError(`unexpected end of file after "${words[0]}"`);
      if (end.kind === ";") list.push({ name: words[0]!, args: words.slice(1), line: t.line });
      else if (end.kind === "{")
        list.push({ name: words[0]!, args: words.slice(1), block: block(depth + 1), line: t.line });
      else throw new NginxSyntaxError(`unexpected } after "${words[0]}" on line ${end.line} (missing ;)`);
    }
  };
  return block(0);
}

/** Every directive, depth first. */
export function* walk(list: readonly Directive[]): Generator<Directive> {
  for (const d of list) {
    yield d;
    if (d.block) yield* walk(d.block);
  }
}
