// Command render is a small stand-in for `helm template`, used by the test
// suite where no helm binary can be installed. It renders one chart directory
// with the same engines Helm uses (Go's text/template, sprig and
// sigs.k8s.io/yaml) and follows Helm v3's loading, value coalescing and
// rendering rules closely enough for chart tests. It is test tooling, not a
// Helm replacement: subcharts, hooks execution, post-renderers and cluster
// access are out of scope.
//
// Build (GOPATH mode, against Debian's golang-*-dev packages):
//
//	GO111MODULE=off GOPATH=/usr/share/gocode go build -o render render.go
//
// Usage:
//
//	render [flags] CHART_DIR
//
//	-f, --values FILE       YAML values file merged over values.yaml ("-" = stdin); repeatable
//	--values-json JSON      JSON object merged like a values file ("-" = stdin); repeatable
//	--name NAME             release name (default "release-name", as helm template)
//	--namespace NS          release namespace (default "default")
//	--kube-version V        Kubernetes version for .Capabilities (default v1.32.0)
//	--api-versions LIST     extra API versions for .Capabilities.APIVersions; repeatable, comma-separated
//	--include-crds          put the files of crds/ before the rendered templates
//	--show-values           print only the coalesced values, render nothing
//
// Output on success (exit 0), one JSON document on stdout:
//
//	{"manifests":[{"template":"templates/x.yaml","content":"..."}],
//	 "notes":"..."|null, "values":{...}, "warnings":[...]}
//
// On failure it prints "Error: ..." on stderr (with the template name and line
// for template errors, as Helm does) and exits 1.
package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"text/template"

	"github.com/BurntSushi/toml"
	// Debian installs sprig v3 at its pre-module path; a module-aware build
	// would import "github.com/Masterminds/sprig/v3".
	"github.com/Masterminds/semver"
	"github.com/Masterminds/sprig"
	"sigs.k8s.io/yaml"
)

// Defaults of `helm template` without a cluster.
const (
	defaultReleaseName = "release-name"
	defaultNamespace   = "default"
	defaultKubeVersion = "v1.32.0"
	helmVersion        = "v3.17.0" // reported as .Capabilities.HelmVersion.Version
)

// ---------------------------------------------------------------------------
// Command line

// valueSource is one -f/--values or --values-json argument, kept in command-line order.
type valueSource struct {
	json bool
	arg  string
}

type valueSourceFlag struct {
	json    bool
	sources *[]valueSource
}

func (f valueSourceFlag) String() string { return "" }
func (f valueSourceFlag) Set(s string) error {
	*f.sources = append(*f.sources, valueSource{json: f.json, arg: s})
	return nil
}

// listFlag accepts repeated and comma-separated values, like Helm's string slices.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }
func (l *listFlag) Set(s string) error {
	for _, part := range strings.Split(s, ",") {
		if part = strings.TrimSpace(part); part != "" {
			*l = append(*l, part)
		}
	}
	return nil
}

type options struct {
	chartDir    string
	sources     []valueSource
	releaseName string
	namespace   string
	kubeVersion string
	apiVersions []string
	includeCrds bool
	showValues  bool
}

func parseArgs(args []string) (*options, error) {
	opts := &options{}
	fs := flag.NewFlagSet("render", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Var(valueSourceFlag{json: false, sources: &opts.sources}, "f", "values file")
	fs.Var(valueSourceFlag{json: false, sources: &opts.sources}, "values", "values file")
	fs.Var(valueSourceFlag{json: true, sources: &opts.sources}, "values-json", "values as a JSON object")
	fs.StringVar(&opts.releaseName, "name", defaultReleaseName, "release name")
	fs.StringVar(&opts.namespace, "namespace", defaultNamespace, "release namespace")
	fs.StringVar(&opts.kubeVersion, "kube-version", "", "Kubernetes version")
	apis := &listFlag{}
	fs.Var(apis, "api-versions", "extra API versions")
	fs.Var(apis, "a", "extra API versions")
	fs.BoolVar(&opts.includeCrds, "include-crds", false, "include crds/")
	fs.BoolVar(&opts.showValues, "show-values", false, "print the coalesced values only")

	// Allow flags after the chart directory, as helm does.
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			break
		}
		positional = append(positional, rest[0])
		args = rest[1:]
	}
	if len(positional) != 1 {
		return nil, fmt.Errorf("expected exactly one chart directory, got %d arguments", len(positional))
	}
	opts.chartDir = positional[0]
	opts.apiVersions = *apis
	return opts, nil
}

func main() {
	opts, err := parseArgs(os.Args[1:])
	if err == nil {
		var out *output
		out, err = run(opts)
		if err == nil {
			enc := json.NewEncoder(os.Stdout)
			enc.SetEscapeHTML(false)
			err = enc.Encode(out)
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "Error: "+err.Error())
		os.Exit(1)
	}
}

// ---------------------------------------------------------------------------
// Output

type manifest struct {
	Template string `json:"template"` // path inside the chart, e.g. templates/x.yaml or crds/x.yaml
	Content  string `json:"content"`
}

type output struct {
	Manifests []manifest             `json:"manifests"`
	Notes     *string                `json:"notes"`
	Values    map[string]interface{} `json:"values"`
	Warnings  []string               `json:"warnings"`
}

// warnings collects Helm's coalescing warnings (Helm logs them to stderr).
var warnings = []string{}

func warnf(format string, args ...interface{}) {
	warnings = append(warnings, fmt.Sprintf(format, args...))
}

func run(opts *options) (*output, error) {
	ch, err := loadChartDir(opts.chartDir)
	if err != nil {
		return nil, err
	}

	userValues, err := readUserValues(opts.sources)
	if err != nil {
		return nil, err
	}
	values := coalesceRoot(ch.Values, userValues)
	if opts.showValues {
		return &output{Manifests: []manifest{}, Values: values, Warnings: warnings}, nil
	}

	// Helm's install action refuses library charts.
	if ch.Metadata.Type == "library" {
		return nil, fmt.Errorf("library charts are not installable")
	}

	caps, err := newCapabilities(opts.kubeVersion, opts.apiVersions)
	if err != nil {
		return nil, err
	}
	// Helm checks the chart's kubeVersion constraint before rendering.
	if ch.Metadata.KubeVersion != "" && !isCompatibleRange(ch.Metadata.KubeVersion, caps.KubeVersion.Version) {
		return nil, fmt.Errorf("chart requires kubeVersion: %s which is incompatible with Kubernetes %s",
			ch.Metadata.KubeVersion, caps.KubeVersion.Version)
	}

	top := map[string]interface{}{
		"Chart":        ch.Metadata,
		"Capabilities": caps,
		"Release": map[string]interface{}{
			"Name":      opts.releaseName,
			"Namespace": opts.namespace,
			"Revision":  1,
			"Service":   "Helm",
			"IsUpgrade": false,
			"IsInstall": true,
		},
		"Values": values,
		"Files":  newFiles(ch.Files),
	}

	rendered, err := renderTemplates(ch, top)
	if err != nil {
		return nil, err
	}

	out := &output{Manifests: []manifest{}, Values: values, Warnings: warnings}
	prefix := ch.Metadata.Name + "/"

	// --include-crds: the files of crds/ come first, verbatim (never templated).
	if opts.includeCrds {
		for _, f := range ch.Files {
			if strings.HasPrefix(f.Name, "crds/") && hasManifestExtension(f.Name) {
				out.Manifests = append(out.Manifests, manifest{Template: f.Name, Content: string(f.Data)})
			}
		}
	}

	names := make([]string, 0, len(rendered))
	for name := range rendered {
		names = append(names, name)
	}
	// Helm sorts the rendered files by path before splitting them into documents.
	sort.Strings(names)
	for _, name := range names {
		content := rendered[name]
		// Helm takes NOTES.txt out of the manifests; only the top chart's notes are kept.
		if strings.HasSuffix(name, "NOTES.txt") {
			if name == path.Join(ch.Metadata.Name, "templates", "NOTES.txt") {
				notes := content
				out.Notes = &notes
			}
			continue
		}
		// Helm drops files that render to whitespace only.
		if strings.TrimSpace(content) == "" {
			continue
		}
		out.Manifests = append(out.Manifests, manifest{Template: strings.TrimPrefix(name, prefix), Content: content})
	}
	return out, nil
}

// ---------------------------------------------------------------------------
// Chart loading (after helm's pkg/chart/loader and pkg/ignore)

// Maintainer and Dependency mirror Helm's chart.Maintainer and chart.Dependency.
type Maintainer struct {
	Name  string `json:"name,omitempty"`
	Email string `json:"email,omitempty"`
	URL   string `json:"url,omitempty"`
}

type Dependency struct {
	Name         string        `json:"name"`
	Version      string        `json:"version,omitempty"`
	Repository   string        `json:"repository"`
	Condition    string        `json:"condition,omitempty"`
	Tags         []string      `json:"tags,omitempty"`
	Enabled      bool          `json:"enabled,omitempty"`
	ImportValues []interface{} `json:"import-values,omitempty"`
	Alias        string        `json:"alias,omitempty"`
}

// Metadata mirrors Helm's chart.Metadata, so templates see .Chart.Name,
// .Chart.AppVersion, ... with Helm's capitalised field names.
type Metadata struct {
	Name         string            `json:"name,omitempty"`
	Home         string            `json:"home,omitempty"`
	Sources      []string          `json:"sources,omitempty"`
	Version      string            `json:"version,omitempty"`
	Description  string            `json:"description,omitempty"`
	Keywords     []string          `json:"keywords,omitempty"`
	Maintainers  []*Maintainer     `json:"maintainers,omitempty"`
	Icon         string            `json:"icon,omitempty"`
	APIVersion   string            `json:"apiVersion,omitempty"`
	Condition    string            `json:"condition,omitempty"`
	Tags         string            `json:"tags,omitempty"`
	AppVersion   string            `json:"appVersion,omitempty"`
	Deprecated   bool              `json:"deprecated,omitempty"`
	Annotations  map[string]string `json:"annotations,omitempty"`
	KubeVersion  string            `json:"kubeVersion,omitempty"`
	Dependencies []*Dependency     `json:"dependencies,omitempty"`
	Type         string            `json:"type,omitempty"`
}

type chartFile struct {
	Name string // slash-separated path relative to the chart root
	Data []byte
}

type chart struct {
	Metadata  *Metadata
	Values    map[string]interface{}
	Templates []chartFile
	Files     []chartFile // everything that is not Chart.yaml, values*, templates/ or charts/
}

var utf8bom = []byte{0xEF, 0xBB, 0xBF}

func loadChartDir(dir string) (*chart, error) {
	topdir, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	if fi, err := os.Stat(topdir); err != nil {
		return nil, err
	} else if !fi.IsDir() {
		return nil, fmt.Errorf("%s is not a directory (packaged charts are not supported)", dir)
	}

	rules, err := loadIgnoreRules(filepath.Join(topdir, ".helmignore"))
	if err != nil {
		return nil, err
	}

	var files []chartFile
	walkErr := filepath.Walk(topdir, func(name string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, relErr := filepath.Rel(topdir, name)
		if relErr != nil {
			return relErr
		}
		if rel == "." {
			return nil
		}
		n := filepath.ToSlash(rel)
		if fi.IsDir() {
			// A directory matched by .helmignore is skipped as a whole.
			if rules.ignore(n, fi) {
				return filepath.SkipDir
			}
			return nil
		}
		if rules.ignore(n, fi) {
			return nil
		}
		if !fi.Mode().IsRegular() {
			return fmt.Errorf("cannot load irregular file %s as it has file mode type bits set", name)
		}
		data, err := os.ReadFile(name)
		if err != nil {
			return fmt.Errorf("error reading %s: %w", n, err)
		}
		files = append(files, chartFile{Name: n, Data: bytes.TrimPrefix(data, utf8bom)})
		return nil
	})
	if walkErr != nil {
		return nil, walkErr
	}

	c := &chart{Values: map[string]interface{}{}}
	for _, f := range files {
		switch {
		case f.Name == "Chart.yaml":
			c.Metadata = &Metadata{}
			if err := yaml.Unmarshal(f.Data, c.Metadata); err != nil {
				return nil, fmt.Errorf("cannot load Chart.yaml: %w", err)
			}
		case f.Name == "values.yaml":
			vals, err := readValues(f.Data)
			if err != nil {
				return nil, fmt.Errorf("cannot load values.yaml: %w", err)
			}
			c.Values = vals
		case f.Name == "values.schema.json", f.Name == "Chart.lock",
			f.Name == "requirements.yaml", f.Name == "requirements.lock":
			// The schema is checked by the TypeScript side (ajv); lock files are not needed.
		case strings.HasPrefix(f.Name, "templates/"):
			c.Templates = append(c.Templates, f)
		case strings.HasPrefix(f.Name, "charts/"):
			return nil, fmt.Errorf("%s: subcharts are not supported by this renderer", f.Name)
		default:
			c.Files = append(c.Files, f)
		}
	}
	if c.Metadata == nil {
		return nil, fmt.Errorf("Chart.yaml file is missing in %s", dir)
	}
	if err := validateMetadata(c.Metadata); err != nil {
		return nil, fmt.Errorf("validation: %w", err)
	}
	if len(c.Metadata.Dependencies) > 0 {
		return nil, fmt.Errorf("chart %s declares dependencies: subcharts are not supported by this renderer", c.Metadata.Name)
	}
	return c, nil
}

// validateMetadata applies the checks of Helm's Metadata.Validate that matter here.
func validateMetadata(md *Metadata) error {
	if md.APIVersion == "" {
		// Helm 3 loads a Chart.yaml without apiVersion as a v1 chart.
		md.APIVersion = "v1"
	}
	if md.Name == "" {
		return errors.New("chart.metadata.name is required")
	}
	if md.Name != path.Base(md.Name) {
		return fmt.Errorf("chart.metadata.name %q is invalid", md.Name)
	}
	if md.Version == "" {
		return errors.New("chart.metadata.version is required")
	}
	if _, err := semver.StrictNewVersion(md.Version); err != nil {
		return fmt.Errorf("chart.metadata.version %q is invalid", md.Version)
	}
	if md.Type != "" && md.Type != "application" && md.Type != "library" {
		return errors.New("chart.metadata.type must be application or library")
	}
	return nil
}

func hasManifestExtension(name string) bool {
	ext := path.Ext(name)
	return strings.EqualFold(ext, ".yaml") || strings.EqualFold(ext, ".yml") || strings.EqualFold(ext, ".json")
}

// ignoreRules is Helm's .helmignore matcher (pkg/ignore): filepath.Match
// patterns, "**" is rejected, a pattern without "/" matches the base name only,
// a trailing "/" matches directories only, a leading "!" negates.
type ignoreRules struct{ patterns []ignorePattern }

type ignorePattern struct {
	raw     string
	rule    string
	negate  bool
	mustDir bool
	base    bool // match the base name only
}

func loadIgnoreRules(file string) (*ignoreRules, error) {
	r := &ignoreRules{}
	// Helm always ignores hidden files in templates/.
	if err := r.parse("templates/.?*"); err != nil {
		return nil, err
	}
	data, err := os.ReadFile(file)
	if errors.Is(err, os.ErrNotExist) {
		return r, nil
	} else if err != nil {
		return nil, err
	}
	for _, line := range strings.Split(string(data), "\n") {
		if err := r.parse(line); err != nil {
			return nil, fmt.Errorf(".helmignore: %w", err)
		}
	}
	return r, nil
}

func (r *ignoreRules) parse(rule string) error {
	rule = strings.TrimSpace(rule)
	if rule == "" || strings.HasPrefix(rule, "#") {
		return nil
	}
	if strings.Contains(rule, "**") {
		return errors.New("double-star (**) syntax is not supported")
	}
	if _, err := filepath.Match(rule, "abc"); err != nil {
		return err
	}
	p := ignorePattern{raw: rule}
	if strings.HasPrefix(rule, "!") {
		p.negate = true
		rule = rule[1:]
	}
	if strings.HasSuffix(rule, "/") {
		p.mustDir = true
		rule = strings.TrimSuffix(rule, "/")
	}
	if strings.HasPrefix(rule, "/") {
		rule = strings.TrimPrefix(rule, "/")
	} else if !strings.Contains(rule, "/") {
		p.base = true
	}
	p.rule = rule
	r.patterns = append(r.patterns, p)
	return nil
}

func (r *ignoreRules) ignore(name string, fi os.FileInfo) bool {
	for _, p := range r.patterns {
		n := name
		if p.base {
			n = path.Base(name)
		}
		matched, _ := filepath.Match(p.rule, n)
		// Helm's negation is quirky, and copied as is: a negated rule ignores
		// everything it does not match, and stops there.
		if p.negate {
			if p.mustDir && !fi.IsDir() {
				return true
			}
			if !matched {
				return true
			}
			continue
		}
		if p.mustDir && !fi.IsDir() {
			continue
		}
		if matched {
			return true
		}
	}
	return false
}

// ---------------------------------------------------------------------------
// Values (after helm's pkg/chartutil/values.go, coalesce.go and pkg/cli/values)

// readValues parses YAML the way chartutil.ReadValues does: through
// sigs.k8s.io/yaml, so every number becomes a float64 (hence Helm's famous
// 1e+06 when a large integer is printed).
func readValues(data []byte) (map[string]interface{}, error) {
	vals := map[string]interface{}{}
	if err := yaml.Unmarshal(data, &vals); err != nil {
		return nil, err
	}
	if vals == nil {
		vals = map[string]interface{}{}
	}
	return vals, nil
}

func readUserValues(sources []valueSource) (map[string]interface{}, error) {
	base := map[string]interface{}{}
	stdinUsed := false
	for _, src := range sources {
		var data []byte
		var err error
		label := src.arg
		if src.arg == "-" {
			if stdinUsed {
				return nil, errors.New("stdin (-) can be read only once")
			}
			stdinUsed = true
			label = "<stdin>"
			data, err = io.ReadAll(os.Stdin)
		} else if src.json {
			label = "--values-json"
			data = []byte(src.arg)
		} else {
			data, err = os.ReadFile(src.arg)
		}
		if err != nil {
			return nil, err
		}
		current := map[string]interface{}{}
		if src.json {
			if err := json.Unmarshal(data, &current); err != nil {
				return nil, fmt.Errorf("failed to parse %s: %w", label, err)
			}
		} else if err := yaml.Unmarshal(data, &current); err != nil {
			return nil, fmt.Errorf("failed to parse %s: %w", label, err)
		}
		if current == nil {
			current = map[string]interface{}{}
		}
		// Several -f files are merged with Helm's mergeMaps (later wins, maps deep-merged).
		base = mergeMaps(base, current)
	}
	return base, nil
}

// mergeMaps is Helm's values.mergeMaps: b over a, maps merged recursively,
// nulls kept (they delete keys later, in coalescing).
func mergeMaps(a, b map[string]interface{}) map[string]interface{} {
	out := make(map[string]interface{}, len(a))
	for k, v := range a {
		out[k] = v
	}
	for k, v := range b {
		if vm, ok := v.(map[string]interface{}); ok {
			if bv, ok := out[k]; ok {
				if bvm, ok := bv.(map[string]interface{}); ok {
					out[k] = mergeMaps(bvm, vm)
					continue
				}
			}
		}
		out[k] = v
	}
	return out
}

// coalesceRoot is chartutil.CoalesceValues for a chart without dependencies:
// user values win, maps are deep-merged with the chart's values.yaml, and a
// null given by the user deletes the key.
func coalesceRoot(chartValues, user map[string]interface{}) map[string]interface{} {
	dest := deepCopyMap(user)
	src := deepCopyMap(chartValues)
	for key, val := range src {
		value, ok := dest[key]
		if !ok {
			dest[key] = val
			continue
		}
		if value == nil {
			// A null from the user removes the key (Helm's coalesce, not merge).
			delete(dest, key)
		} else if dv, ok := value.(map[string]interface{}); ok {
			if sv, ok := val.(map[string]interface{}); ok {
				coalesceTables(dv, sv, key)
			} else if val != nil {
				warnf("warning: skipped value for %s: Not a table.", key)
			}
		}
	}
	return dest
}

// coalesceTables is chartutil.coalesceTablesFullKey with merge=false.
func coalesceTables(dst, src map[string]interface{}, prefix string) {
	for key, val := range src {
		fullkey := prefix + "." + key
		dv, ok := dst[key]
		switch {
		case ok && dv == nil:
			delete(dst, key)
		case !ok:
			dst[key] = val
		case isTable(val):
			if isTable(dv) {
				coalesceTables(dv.(map[string]interface{}), val.(map[string]interface{}), fullkey)
			} else {
				warnf("warning: cannot overwrite table with non table for %s (%v)", fullkey, val)
			}
		case isTable(dv) && val != nil:
			warnf("warning: destination for %s is a table. Ignoring non-table value (%v)", fullkey, val)
		}
	}
}

func isTable(v interface{}) bool {
	_, ok := v.(map[string]interface{})
	return ok
}

func deepCopyMap(m map[string]interface{}) map[string]interface{} {
	out := make(map[string]interface{}, len(m))
	for k, v := range m {
		out[k] = deepCopy(v)
	}
	return out
}

func deepCopy(v interface{}) interface{} {
	switch t := v.(type) {
	case map[string]interface{}:
		return deepCopyMap(t)
	case []interface{}:
		out := make([]interface{}, len(t))
		for i, e := range t {
			out[i] = deepCopy(e)
		}
		return out
	default:
		return v
	}
}

// ---------------------------------------------------------------------------
// Capabilities (after helm's pkg/chartutil/capabilities.go)

// KubeVersion is Helm's chartutil.KubeVersion.
type KubeVersion struct {
	Version string `json:"version"`
	Major   string `json:"major"`
	Minor   string `json:"minor"`
}

// String makes {{ .Capabilities.KubeVersion }} print the version.
func (kv *KubeVersion) String() string { return kv.Version }

// GitVersion is Helm's deprecated alias of Version.
func (kv *KubeVersion) GitVersion() string { return kv.Version }

// VersionSet is Helm's chartutil.VersionSet.
type VersionSet []string

// Has reports whether the API version (e.g. "apps/v1" or "apps/v1/Deployment") is known.
func (v VersionSet) Has(apiVersion string) bool {
	for _, x := range v {
		if x == apiVersion {
			return true
		}
	}
	return false
}

// BuildInfo is Helm's version.BuildInfo.
type BuildInfo struct {
	Version      string `json:"version,omitempty"`
	GitCommit    string `json:"git_commit,omitempty"`
	GitTreeState string `json:"git_tree_state,omitempty"`
	GoVersion    string `json:"go_version,omitempty"`
}

// Capabilities is Helm's chartutil.Capabilities.
type Capabilities struct {
	KubeVersion KubeVersion
	APIVersions VersionSet
	HelmVersion BuildInfo
}

// defaultAPIVersions stands in for Helm's DefaultVersionSet (every group/version
// and group/version/Kind that its client-go knows): the built-in APIs of a
// current Kubernetes, with the kinds charts usually test for.
var defaultAPIVersions = func() []string {
	groups := []struct {
		gv    string
		kinds string
	}{
		{"v1", "Binding ConfigMap Endpoints Event LimitRange Namespace Node PersistentVolume PersistentVolumeClaim Pod PodTemplate ReplicationController ResourceQuota Secret Service ServiceAccount"},
		{"admissionregistration.k8s.io/v1", "MutatingWebhookConfiguration ValidatingWebhookConfiguration ValidatingAdmissionPolicy ValidatingAdmissionPolicyBinding"},
		{"apiextensions.k8s.io/v1", "CustomResourceDefinition"},
		{"apiregistration.k8s.io/v1", "APIService"},
		{"apps/v1", "ControllerRevision DaemonSet Deployment ReplicaSet StatefulSet"},
		{"authentication.k8s.io/v1", "SelfSubjectReview TokenReview"},
		{"authorization.k8s.io/v1", "LocalSubjectAccessReview SelfSubjectAccessReview SelfSubjectRulesReview SubjectAccessReview"},
		{"autoscaling/v1", "HorizontalPodAutoscaler"},
		{"autoscaling/v2", "HorizontalPodAutoscaler"},
		{"batch/v1", "CronJob Job"},
		{"certificates.k8s.io/v1", "CertificateSigningRequest"},
		{"coordination.k8s.io/v1", "Lease"},
		{"discovery.k8s.io/v1", "EndpointSlice"},
		{"events.k8s.io/v1", "Event"},
		{"flowcontrol.apiserver.k8s.io/v1", "FlowSchema PriorityLevelConfiguration"},
		{"networking.k8s.io/v1", "Ingress IngressClass NetworkPolicy"},
		{"node.k8s.io/v1", "RuntimeClass"},
		{"policy/v1", "PodDisruptionBudget"},
		{"rbac.authorization.k8s.io/v1", "ClusterRole ClusterRoleBinding Role RoleBinding"},
		{"scheduling.k8s.io/v1", "PriorityClass"},
		{"storage.k8s.io/v1", "CSIDriver CSINode CSIStorageCapacity StorageClass VolumeAttachment"},
	}
	var out []string
	for _, g := range groups {
		out = append(out, g.gv)
		for _, k := range strings.Fields(g.kinds) {
			out = append(out, g.gv+"/"+k)
		}
	}
	return out
}()

func newCapabilities(kubeVersion string, extraAPIs []string) (*Capabilities, error) {
	if kubeVersion == "" {
		kubeVersion = defaultKubeVersion
	}
	// Helm's chartutil.ParseKubeVersion: any semver, printed back with a "v".
	sv, err := semver.NewVersion(kubeVersion)
	if err != nil {
		return nil, fmt.Errorf("invalid kube version %q: %w", kubeVersion, err)
	}
	apis := append(VersionSet{}, defaultAPIVersions...)
	// --api-versions adds to the defaults.
	apis = append(apis, extraAPIs...)
	return &Capabilities{
		KubeVersion: KubeVersion{
			Version: "v" + sv.String(),
			Major:   strconv.FormatUint(sv.Major(), 10),
			Minor:   strconv.FormatUint(sv.Minor(), 10),
		},
		APIVersions: apis,
		HelmVersion: BuildInfo{Version: helmVersion, GoVersion: runtime.Version()},
	}, nil
}

// isCompatibleRange is chartutil.IsCompatibleRange.
func isCompatibleRange(constraint, version string) bool {
	sv, err := semver.NewVersion(version)
	if err != nil {
		return false
	}
	c, err := semver.NewConstraint(constraint)
	if err != nil {
		return false
	}
	return c.Check(sv)
}

// ---------------------------------------------------------------------------
// .Files (after helm's pkg/engine/files.go)

type files map[string][]byte

func newFiles(from []chartFile) files {
	f := files{}
	for _, cf := range from {
		f[cf.Name] = cf.Data
	}
	return f
}

// GetBytes returns a file's bytes, or nil when the chart has no such file.
func (f files) GetBytes(name string) []byte {
	if v, ok := f[name]; ok {
		return v
	}
	return nil
}

// Get returns a file's content as a string ("" when missing).
func (f files) Get(name string) string { return string(f.GetBytes(name)) }

// Glob returns the files whose path matches a gobwas/glob pattern ("*" stops
// at "/", "**" does not); an invalid pattern matches everything, as in Helm.
func (f files) Glob(pattern string) files {
	re, err := globToRegexp(pattern)
	if err != nil {
		re = regexp.MustCompile(`^.*$`)
	}
	nf := files{}
	for name, data := range f {
		if re.MatchString(name) {
			nf[name] = data
		}
	}
	return nf
}

// AsConfig renders the files as a YAML map of base name to content, for a ConfigMap.
func (f files) AsConfig() string {
	if f == nil {
		return ""
	}
	m := map[string]string{}
	for k, v := range f {
		m[path.Base(k)] = string(v)
	}
	return toYAML(m)
}

// AsSecrets renders the files as a YAML map of base name to base64 content, for a Secret.
func (f files) AsSecrets() string {
	if f == nil {
		return ""
	}
	m := map[string]string{}
	for k, v := range f {
		m[path.Base(k)] = base64.StdEncoding.EncodeToString(v)
	}
	return toYAML(m)
}

// Lines returns a file's lines (without a final empty line).
func (f files) Lines(p string) []string {
	if f == nil || len(f[p]) == 0 {
		return []string{}
	}
	s := string(f[p])
	s = strings.TrimSuffix(s, "\n")
	return strings.Split(s, "\n")
}

// globToRegexp translates gobwas/glob syntax with separator '/':
// * ** ? [abc] [!abc] [a-z] {a,b} and \ escapes.
func globToRegexp(pattern string) (*regexp.Regexp, error) {
	var b strings.Builder
	b.WriteString("^")
	depth := 0
	for i := 0; i < len(pattern); i++ {
		c := pattern[i]
		switch c {
		case '*':
			if i+1 < len(pattern) && pattern[i+1] == '*' {
				b.WriteString(".*")
				i++
			} else {
				b.WriteString("[^/]*")
			}
		case '?':
			b.WriteString("[^/]")
		case '[':
			end := strings.IndexByte(pattern[i+1:], ']')
			if end < 0 {
				return nil, fmt.Errorf("unclosed [ in %q", pattern)
			}
			class := pattern[i+1 : i+1+end]
			if strings.HasPrefix(class, "!") {
				class = "^" + class[1:]
			}
			b.WriteString("[" + class + "]")
			i += end + 1
		case '{':
			depth++
			b.WriteString("(?:")
		case '}':
			if depth == 0 {
				return nil, fmt.Errorf("unbalanced } in %q", pattern)
			}
			depth--
			b.WriteString(")")
		case ',':
			if depth > 0 {
				b.WriteString("|")
			} else {
				b.WriteString(",")
			}
		case '\\':
			if i+1 < len(pattern) {
				i++
				b.WriteString(regexp.QuoteMeta(string(pattern[i])))
			}
		default:
			b.WriteString(regexp.QuoteMeta(string(c)))
		}
	}
	if depth != 0 {
		return nil, fmt.Errorf("unclosed { in %q", pattern)
	}
	b.WriteString("$")
	return regexp.Compile(b.String())
}

// ---------------------------------------------------------------------------
// Template functions (after helm's pkg/engine/funcs.go and engine.go)

// Helm wraps the messages of required and fail in these markers, so that the
// final error shows the message without text/template's call chain.
const (
	warnStartDelim   = "HELM_ERR_START"
	warnEndDelim     = "HELM_ERR_END"
	recursionMaxNums = 1000
)

var warnRegex = regexp.MustCompile(warnStartDelim + `((?s).*)` + warnEndDelim)

func warnWrap(warn string) string { return warnStartDelim + warn + warnEndDelim }

// funcMap is sprig's TxtFuncMap without env/expandenv, plus Helm's own functions.
// include and tpl are placeholders here and bound to the template set later.
func funcMap() template.FuncMap {
	f := sprig.TxtFuncMap()
	delete(f, "env")
	delete(f, "expandenv")

	extra := template.FuncMap{
		"toToml":        toTOML,
		"toYaml":        toYAML,
		"fromYaml":      fromYAML,
		"fromYamlArray": fromYAMLArray,
		"toJson":        toJSON,
		"fromJson":      fromJSON,
		"fromJsonArray": fromJSONArray,

		"include":  func(string, interface{}) string { return "not implemented" },
		"tpl":      func(string, interface{}) interface{} { return "not implemented" },
		"required": required,
		"fail":     fail,
		// helm template has no cluster: lookup finds nothing.
		"lookup": func(string, string, string, string) (map[string]interface{}, error) {
			return map[string]interface{}{}, nil
		},
		// Without --enable-dns Helm makes getHostByName return "".
		"getHostByName": func(string) string { return "" },
	}
	for k, v := range extra {
		f[k] = v
	}
	return f
}

// required fails on nil and on the empty string, as Helm's does.
func required(warn string, val interface{}) (interface{}, error) {
	if val == nil {
		return val, errors.New(warnWrap(warn))
	}
	if s, ok := val.(string); ok && s == "" {
		return val, errors.New(warnWrap(warn))
	}
	return val, nil
}

func fail(msg string) (string, error) { return "", errors.New(warnWrap(msg)) }

func toYAML(v interface{}) string {
	data, err := yaml.Marshal(v)
	if err != nil {
		return "" // Helm swallows errors inside templates
	}
	return strings.TrimSuffix(string(data), "\n")
}

func fromYAML(str string) map[string]interface{} {
	m := map[string]interface{}{}
	if err := yaml.Unmarshal([]byte(str), &m); err != nil {
		m["Error"] = err.Error()
	}
	return m
}

func fromYAMLArray(str string) []interface{} {
	a := []interface{}{}
	if err := yaml.Unmarshal([]byte(str), &a); err != nil {
		a = []interface{}{err.Error()}
	}
	return a
}

func toTOML(v interface{}) string {
	b := bytes.NewBuffer(nil)
	if err := toml.NewEncoder(b).Encode(v); err != nil {
		return err.Error()
	}
	return b.String()
}

func toJSON(v interface{}) string {
	data, err := json.Marshal(v)
	if err != nil {
		return ""
	}
	return string(data)
}

func fromJSON(str string) map[string]interface{} {
	m := map[string]interface{}{}
	if err := json.Unmarshal([]byte(str), &m); err != nil {
		m["Error"] = err.Error()
	}
	return m
}

func fromJSONArray(str string) []interface{} {
	a := []interface{}{}
	if err := json.Unmarshal([]byte(str), &a); err != nil {
		a = []interface{}{err.Error()}
	}
	return a
}

// includeFun executes a named template into a string, with Helm's recursion guard.
func includeFun(t *template.Template, includedNames map[string]int) func(string, interface{}) (string, error) {
	return func(name string, data interface{}) (string, error) {
		var buf strings.Builder
		if v, ok := includedNames[name]; ok {
			if v > recursionMaxNums {
				return "", fmt.Errorf("rendering template has a nested reference name: %s: unable to execute template", name)
			}
			includedNames[name]++
		} else {
			includedNames[name] = 1
		}
		err := t.ExecuteTemplate(&buf, name, data)
		includedNames[name]--
		return buf.String(), err
	}
}

// tplFun renders a string as a template in a clone of the chart's template set,
// so it sees every define and can include them (Helm 3.12+ behaviour).
func tplFun(parent *template.Template, includedNames map[string]int) func(string, interface{}) (string, error) {
	return func(tpl string, vals interface{}) (string, error) {
		t, err := parent.Clone()
		if err != nil {
			return "", fmt.Errorf("cannot clone template: %w", err)
		}
		// Clone drops the missingkey option (golang/go#43022); Helm sets it again.
		t.Option("missingkey=zero")
		t.Funcs(template.FuncMap{
			"include": includeFun(t, includedNames),
			"tpl":     tplFun(t, includedNames),
		})
		t, err = t.New(parent.Name()).Parse(tpl)
		if err != nil {
			return "", fmt.Errorf("cannot parse template %q: %w", tpl, err)
		}
		var buf strings.Builder
		if err := t.Execute(&buf, vals); err != nil {
			return "", fmt.Errorf("error during tpl function execution for %q: %w", tpl, err)
		}
		return strings.ReplaceAll(buf.String(), "<no value>", ""), nil
	}
}

// ---------------------------------------------------------------------------
// Rendering (after helm's pkg/engine/engine.go)

// sortTemplates orders template names like Helm: deeper paths first, then
// reverse lexical order. Parse order decides which duplicate define wins.
func sortTemplates(names []string) {
	sort.Slice(names, func(i, j int) bool {
		a, b := names[i], names[j]
		ca, cb := strings.Count(a, "/"), strings.Count(b, "/")
		if ca == cb {
			return a > b
		}
		return ca > cb
	})
}

func renderTemplates(ch *chart, top map[string]interface{}) (rendered map[string]string, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("rendering template failed: %v", r)
		}
	}()

	t := template.New("gotpl")
	// missingkey=zero like Helm (non-strict); "<no value>" is removed below.
	t.Option("missingkey=zero")
	fm := funcMap()
	includedNames := map[string]int{}
	fm["include"] = includeFun(t, includedNames)
	fm["tpl"] = tplFun(t, includedNames)
	t.Funcs(fm)

	// Template names carry the chart name, as in Helm: "demo/templates/x.yaml".
	sources := map[string]string{}
	names := make([]string, 0, len(ch.Templates))
	for _, f := range ch.Templates {
		name := path.Join(ch.Metadata.Name, f.Name)
		sources[name] = string(f.Data)
		names = append(names, name)
	}
	sortTemplates(names)

	for _, name := range names {
		if _, err := t.New(name).Parse(sources[name]); err != nil {
			return nil, cleanupParseError(name, err)
		}
	}

	basePath := path.Join(ch.Metadata.Name, "templates")
	rendered = make(map[string]string, len(names))
	for _, name := range names {
		// Partials (_*.tpl, _*.yaml, ...) only hold defines; they produce no output.
		if strings.HasPrefix(path.Base(name), "_") {
			continue
		}
		top["Template"] = map[string]interface{}{"Name": name, "BasePath": basePath}
		var buf strings.Builder
		if err := t.ExecuteTemplate(&buf, name, top); err != nil {
			return nil, cleanupExecError(name, err)
		}
		// missingkey=zero still prints "<no value>" for missing map keys; Helm removes it.
		rendered[name] = strings.ReplaceAll(buf.String(), "<no value>", "")
	}
	return rendered, nil
}

// cleanupParseError reduces text/template's parse error to Helm's
// "parse error at (demo/templates/x.yaml:12): ..." form.
func cleanupParseError(filename string, err error) error {
	tokens := strings.Split(err.Error(), ": ")
	if len(tokens) == 1 {
		return fmt.Errorf("parse error in (%s): %s", filename, err)
	}
	location := tokens[1]
	errMsg := tokens[len(tokens)-1]
	return fmt.Errorf("parse error at (%s): %s", location, errMsg)
}

// cleanupExecError turns the error of required/fail into Helm's
// "execution error at (demo/templates/x.yaml:12:3): message"; other execution
// errors keep Go's "template: demo/templates/x.yaml:12:3: executing ..." text.
func cleanupExecError(filename string, err error) error {
	var execErr template.ExecError
	if !errors.As(err, &execErr) {
		return err
	}
	tokens := strings.SplitN(err.Error(), ": ", 3)
	if len(tokens) != 3 {
		return fmt.Errorf("execution error in (%s): %s", filename, err)
	}
	location := tokens[1]
	if parts := warnRegex.FindStringSubmatch(tokens[2]); len(parts) >= 2 {
		return fmt.Errorf("execution error at (%s): %s", location, parts[1])
	}
	return err
}
