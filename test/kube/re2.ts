import { RE2JS } from '@bufbuild/re2';

// Schema patterns as the API server reads them: RE2, Go's dialect, not JavaScript's (no lookaround, no backreferences).

/** isRe2 tells whether a pattern compiles as RE2, the dialect Kubernetes' schema patterns use (Go's regexp). */
export function isRe2(pattern: string): boolean {
  try {
    RE2JS.compile(pattern);
    return true;
  } catch {
    return false;
  }
}

const patterns = new Map<string, RE2JS>();

/** re2Test reports whether an RE2 pattern matches anywhere in text (Go's MatchString). */
export function re2Test(pattern: string, text: string): boolean {
  let re = patterns.get(pattern);
  if (re === undefined) {
    re = RE2JS.compile(pattern);
    patterns.set(pattern, re);
  }
  return re.test(text);
}
