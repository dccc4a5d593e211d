package zappa

import (
	"path/filepath"
	"regexp"
	"strings"
	"unicode"

	"golang.org/x/text/unicode/norm"

	"github.com/stokehq/stoke/internal/lambdaspec"
)

// projectNameFromDir is Zappa's get_project_name: the working directory's
// name, slugified, cut to 15 characters (the cut can leave a trailing '-',
// which the function name's own slugify then drops, as in Zappa).
func projectNameFromDir(dir string) string {
	s := slugify(filepath.Base(dir))
	if len(s) > 15 {
		s = s[:15]
	}
	return s
}

var digitComma = regexp.MustCompile(`(\d),(\d)`)

// slugify does what python-slugify's slugify (Zappa's) does to ASCII and
// accented Latin text: quotes become separators, accents are dropped
// (é → e), "1,000" becomes "1000", everything is lowercased and every run
// of characters other than a-z and 0-9 becomes one '-', trimmed at both
// ends. (python-slugify also transliterates other scripts with unidecode;
// here their letters are dropped.) The result fits Lambda's 64 characters.
func slugify(s string) string {
	var folded strings.Builder
	for _, r := range norm.NFKD.String(s) {
		if unicode.Is(unicode.Mn, r) {
			continue
		}
		folded.WriteRune(r)
	}
	text := strings.ToLower(folded.String())
	for text != digitComma.ReplaceAllString(text, "$1$2") {
		text = digitComma.ReplaceAllString(text, "$1$2")
	}
	var b strings.Builder
	dash := false
	for _, r := range text {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') {
			if dash && b.Len() > 0 {
				b.WriteByte('-')
			}
			dash = false
			b.WriteRune(r)
			continue
		}
		dash = true
	}
	out := b.String()
	if len(out) > lambdaspec.MaxFunctionName {
		out = strings.TrimRight(out[:lambdaspec.MaxFunctionName], "-")
	}
	return out
}
