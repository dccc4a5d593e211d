package invokeapi

import (
	"net/http"
	"regexp"
	"strings"

	"github.com/google/uuid"
)

// The route table: Invoke, the read-only operations (functions.go), and a
// Lambda-shaped refusal for every other Lambda operation (so `aws lambda
// list-layers` says what Stoke serves instead of "404 page not found").

// Operations are the Lambda operations Stoke serves.
const Operations = "Invoke, ListFunctions, GetFunction and GetFunctionConfiguration"

// Handler serves the Lambda API paths (LambdaPath). It routes by itself, so
// it works both mounted under a prefix and on its own.
func (a *API) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc(Pattern, a.serve) // sets its request id itself: the invocation's
	// Every other answer gets a request id of its own, as Lambda's do.
	withID := func(h http.HandlerFunc) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("X-Amzn-Requestid", uuid.NewString())
			h(w, r)
		}
	}
	// The SDKs list at /functions, the AWS CLI at /functions/.
	mux.HandleFunc("GET /2015-03-31/functions", withID(a.listFunctions))
	mux.HandleFunc("GET /2015-03-31/functions/{$}", withID(a.listFunctions))
	mux.HandleFunc("GET /2015-03-31/functions/{FunctionName}", withID(a.getFunction))
	mux.HandleFunc("GET /2015-03-31/functions/{FunctionName}/configuration", withID(a.getFunctionConfiguration))
	mux.HandleFunc("/", withID(a.unsupported))
	return mux
}

// lambdaPath matches the paths of Lambda's REST API: a dated API version,
// then one of its resources.
var lambdaPath = regexp.MustCompile(`^/20\d\d-\d\d-\d\d/(functions|event-source-mappings|account-settings|tags|layers|code-signing-configs)(/|$)`)

// LambdaPath says whether path is one of Lambda's API paths, which the
// gateway listener hands to Handler rather than to the routes.
func LambdaPath(path string) bool { return lambdaPath.MatchString(path) }

// operationNames names the common operations Stoke does not serve, by
// method and path shape, so the refusal can say which one was asked for.
var operationNames = []struct {
	method string
	path   *regexp.Regexp
	name   string
}{
	{"POST", regexp.MustCompile(`^/2015-03-31/functions/?$`), "CreateFunction"},
	{"DELETE", regexp.MustCompile(`^/2015-03-31/functions/[^/]+/?$`), "DeleteFunction"},
	{"PUT", regexp.MustCompile(`^/2015-03-31/functions/[^/]+/code/?$`), "UpdateFunctionCode"},
	{"PUT", regexp.MustCompile(`^/2015-03-31/functions/[^/]+/configuration/?$`), "UpdateFunctionConfiguration"},
	{"GET", regexp.MustCompile(`^/2015-03-31/functions/[^/]+/policy/?$`), "GetPolicy"},
	{"POST", regexp.MustCompile(`^/2015-03-31/functions/[^/]+/policy/?$`), "AddPermission"},
	{"GET", regexp.MustCompile(`^/2015-03-31/functions/[^/]+/versions/?$`), "ListVersionsByFunction"},
	{"POST", regexp.MustCompile(`^/2015-03-31/functions/[^/]+/versions/?$`), "PublishVersion"},
	{"GET", regexp.MustCompile(`^/2015-03-31/functions/[^/]+/aliases/?$`), "ListAliases"},
	{"POST", regexp.MustCompile(`^/2015-03-31/functions/[^/]+/aliases/?$`), "CreateAlias"},
	{"GET", regexp.MustCompile(`^/2015-03-31/event-source-mappings/?$`), "ListEventSourceMappings"},
	{"GET", regexp.MustCompile(`^/2016-08-19/account-settings/?$`), "GetAccountSettings"},
	{"GET", regexp.MustCompile(`^/2017-03-31/tags/`), "ListTags"},
	{"GET", regexp.MustCompile(`^/2018-10-31/layers/?$`), "ListLayers"},
	{"GET", regexp.MustCompile(`^/2021-10-31/functions/[^/]+/url/?$`), "GetFunctionUrlConfig"},
	{"GET", regexp.MustCompile(`^/2019-09-30/functions/[^/]+/concurrency/?$`), "GetFunctionConcurrency"},
	{"POST", regexp.MustCompile(`^/2014-11-13/functions/[^/]+/invoke-async/?$`), "InvokeAsync"},
}

// unsupported answers every other Lambda operation with Lambda's error
// shape: a 400 (not retried by the SDKs, unlike a 5xx) whose type and
// message say what Stoke serves.
func (a *API) unsupported(w http.ResponseWriter, r *http.Request) {
	if a.auth != nil {
		if _, e := a.auth.check(r); e != nil {
			writeError(w, e)
			return
		}
	}
	op := "this operation (" + r.Method + " " + r.URL.Path + ")"
	for _, o := range operationNames {
		if o.method == r.Method && o.path.MatchString(r.URL.Path) {
			op = o.name
			break
		}
	}
	if r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/2015-03-31/functions/") && r.URL.Path != "/2015-03-31/functions/" &&
		strings.Count(strings.Trim(strings.TrimPrefix(r.URL.Path, "/2015-03-31/functions/"), "/"), "/") == 0 {
		op = "GetFunction" // reached here only through a path the mux did not take, e.g. with a trailing slash
	}
	writeError(w, userError(http.StatusBadRequest, "UnsupportedOperationException",
		"Stoke serves only these Lambda operations: "+Operations+"; "+op+" is not one of them (docs/lambda.md)"))
}
