// Reads a YAML file and validates it against a zod schema. Every problem is reported with the
// file, the line and column, the dotted field path and what was expected; nothing is half-loaded.
import { readFileSync } from 'node:fs';
import { LineCounter, parseDocument, isNode } from 'yaml';
import type { z } from 'zod';
import { WargateError } from '../errors/catalog.js';

export interface ConfigProblem {
  file: string;
  line: number;
  column: number;
  field: string;
  message: string;
}

export class ConfigError extends WargateError {
  readonly problems: ConfigProblem[];

  constructor(problems: ConfigProblem[]) {
    super('WG_ERR_CONFIG_INVALID', problems.map(formatProblem).join('\n'));
    this.problems = problems;
  }
}

export function formatProblem(p: ConfigProblem): string {
  return `${p.file}:${p.line}:${p.column}: ${p.field || '(top level)'}: ${p.message}`;
}

export function loadYamlFile<S extends z.ZodType>(file: string, schema: S): z.output<S> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new WargateError('WG_ERR_CONFIG_UNREADABLE', `${file}: cannot read: ${(err as Error).message}`, { cause: err });
  }
  return parseYaml(text, file, schema);
}

export function parseYaml<S extends z.ZodType>(text: string, file: string, schema: S): z.output<S> {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  const at = (offset: number | undefined) => {
    const { line, col } = lineCounter.linePos(offset ?? 0);
    return { line, column: col };
  };

  if (doc.errors.length > 0) {
    throw new ConfigError(
      doc.errors.map((e) => ({ file, ...at(e.pos[0]), field: '', message: `YAML syntax: ${e.message.split('\n')[0]}` })),
    );
  }

  const result = schema.safeParse(doc.toJS({ maxAliasCount: 100 }) ?? {});
  if (result.success) return result.data;

  const problems = result.error.issues.map((issue): ConfigProblem => {
    // Point at the deepest node that exists: a missing field is reported at its parent.
    const path = issue.path.filter((k): k is string | number => typeof k !== 'symbol');
    // An unknown key is reported at the key itself, not at the mapping that holds it.
    if (issue.code === 'unrecognized_keys') path.push(issue.keys[0]);
    let node: unknown;
    for (let depth = path.length; depth >= 0 && !isNode(node); depth--) {
      node = depth === 0 ? doc.contents : doc.getIn(path.slice(0, depth), true);
    }
    const range = isNode(node) ? node.range : undefined;
    return { file, ...at(range?.[0]), field: path.join('.'), message: describeIssue(issue) };
  });
  throw new ConfigError(problems);
}

/**
 * Where `path` (a dotted field path as a list) is in a YAML file already loaded once, for problems
 * found after validation (a base that does not exist). The parent's place if the field is absent.
 */
export function locateField(file: string, path: (string | number)[]): { line: number; column: number } {
  try {
    const lineCounter = new LineCounter();
    const doc = parseDocument(readFileSync(file, 'utf8'), { lineCounter });
    for (let depth = path.length; depth >= 0; depth--) {
      const node = depth === 0 ? doc.contents : doc.getIn(path.slice(0, depth), true);
      if (isNode(node) && node.range) {
        const { line, col } = lineCounter.linePos(node.range[0]);
        return { line, column: col };
      }
    }
  } catch {
    // the file was read and parsed before: this is only a better place in the message
  }
  return { line: 1, column: 1 };
}

/** A ConfigError about one field of a file, found after validation. */
export function fieldError(file: string, path: (string | number)[], message: string): ConfigError {
  return new ConfigError([{ file, ...locateField(file, path), field: path.join('.'), message }]);
}

function describeIssue(issue: z.core.$ZodIssue): string {
  switch (issue.code) {
    case 'unrecognized_keys':
      return `unknown field${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => `"${k}"`).join(', ')}`;
    case 'invalid_type':
      return `expected ${issue.expected}${issue.input === undefined ? ' (the field is missing)' : ''}`;
    default:
      // The schema's own messages read as what is expected ("an absolute path"); zod's read as sentences.
      return /^(a|an|at) /.test(issue.message) ? `expected ${issue.message}` : issue.message;
  }
}
