// Package apigw translates between plain HTTP and API Gateway's Lambda proxy events, in both
// directions, so a function written for API Gateway runs behind Stoke unchanged, and a plain HTTP
// app runs as an event-driven function the way Lambda Web Adapter runs it.
//
// Two payload formats exist, named as API Gateway names them: "1.0" is the REST API shape
// (events.APIGatewayProxyRequest/Response) and "2.0" the HTTP API shape
// (events.APIGatewayV2HTTPRequest/Response). The JSON is produced from and parsed into the
// aws-lambda-go structs so the field names and types are Lambda's own.
//
// Stoke has no stages or resources of its own, so a 1.0 event always looks like what a REST API
// with a greedy "ANY /{proxy+}" resource (plus "ANY /" for the root, as Zappa and SAM create)
// served through a custom domain sends: requestContext.path carries no stage prefix.
//
// One file per direction: event.go (HTTP request → event), response.go (the function's proxy
// response → HTTP response), request.go (event → HTTP request, for a plain HTTP app), result.go
// (the app's HTTP response → proxy response).
package apigw

import "time"

// Payload format versions, as API Gateway's payloadFormatVersion spells them.
const (
	Format10 = "1.0"
	Format20 = "2.0"
)

// APIID is what requestContext.apiId says: there is one Stoke gateway, not one API per function.
const APIID = "stoke"

// timeLayout is API Gateway's requestContext.time / requestTime layout (CLF style).
const timeLayout = "02/Jan/2006:15:04:05 -0700"

// RequestInfo carries what API Gateway knows about a request beyond the request itself.
type RequestInfo struct {
	RequestID string
	AccountID string
	// Stage defaults to "$default" for 2.0 (the HTTP API auto-deployed stage) and to "prod" for
	// 1.0, because REST API stage names cannot start with "$".
	Stage string
	// Time is when the gateway received the request; zero means now.
	Time time.Time
	// SourceIP is taken from r.RemoteAddr when empty.
	SourceIP string
}
