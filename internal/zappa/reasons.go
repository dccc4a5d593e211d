package zappa

import "strings"

// The account of every documented Zappa key the mapper does not carry over
// itself: keys that ask for nothing on Stoke whatever their value
// (notNeeded), and features Stoke does not reproduce (reasons). A key in
// neither, nor in mapped, is not a Zappa key.

// mapped are the keys the mapper handles itself (when not null).
var mapped = map[string]bool{
	"app_function": true, "django_settings": true, "project_name": true, "aws_region": true,
	"memory_size": true, "timeout_seconds": true, "keep_warm": true, "lambda_concurrency": true,
	"environment_variables": true, "aws_environment_variables": true, "apigateway_enabled": true,
	"use_apigateway": true, "binary_support": true, "additional_text_mimetypes": true,
	"touch": true, "touch_path": true, "ephemeral_storage": true, "runtime": true, "prebuild_script": true,
	"lambda_description": true, "extends": true,
}

// knownKey says whether key is one of Zappa's settings.
func knownKey(key string) bool {
	if mapped[key] || notNeeded[key] != "" || reasons[key] != "" {
		return true
	}
	return strings.HasPrefix(key, "cloudwatch_")
}

// unsupported says why a documented Zappa key is not imported.
func unsupported(key string) string {
	if why, ok := reasons[key]; ok {
		return why
	}
	if strings.HasPrefix(key, "cloudwatch_") {
		return whyCW
	}
	return ""
}

const (
	whyPackage = "nothing is packaged or uploaded: Stoke runs the code in place from cwd, with the packages installed for its python interpreter"
	whyZip     = "no zip archives are made: Stoke runs the code in place"
	whyIAM     = "no IAM: the app runs with the permissions (and AWS credentials) of the user running Stoke"
	whyDomain  = "no custom domains or certificates: put a TLS reverse proxy in front of the gateway"
	whyAsync   = "zappa.asynchronous tasks go through AWS (Lambda/SNS, DynamoDB); not reproduced"
	whyAPIGW   = "no API Gateway resources: the Stoke gateway is the front door"
	whyCache   = "the gateway has no response cache; cache in the app or a proxy in front"
	whyCW      = "no CloudWatch: stoke logs, stoke invocations and /metrics give logs and metrics"
)

// notNeeded are keys about Zappa's packaging, uploading and AWS bookkeeping:
// whatever their value, nothing the app sees depends on them.
var notNeeded = map[string]string{
	"s3_bucket":                "Stoke deploys from the local directory; there is no code bucket",
	"profile_name":             "Zappa's AWS credentials profile; Stoke deploys nothing to AWS",
	"aws_endpoint_urls":        "endpoints for Zappa's AWS calls; Stoke deploys nothing to AWS",
	"exclude":                  whyPackage,
	"exclude_glob":             whyPackage,
	"include":                  whyPackage,
	"slim_handler":             "no package size limit: " + whyPackage,
	"use_precompiled_packages": whyPackage,
	"delete_local_zip":         whyZip,
	"delete_s3_zip":            whyZip,
	"delete_zip":               whyZip,
	"num_retained_versions":    "Stoke keeps its own record of deployed versions",
	"manage_roles":             "no IAM roles to create",
	"assume_policy":            "no IAM roles to create",
	"apigateway_description":   whyAPIGW,
	"tags":                     "no AWS resources to tag",
}

// reasons covers every key of Zappa's settings reference (README "Advanced
// Settings", plus older names) that asks for a feature Stoke lacks.
var reasons = map[string]string{
	"aws_kms_key_arn":                     "no KMS: environment variables live in stoke.yaml (use ${VAR} for secrets)",
	"role_name":                           whyIAM,
	"role_arn":                            whyIAM,
	"attach_policy":                       whyIAM,
	"extra_permissions":                   whyIAM,
	"vpc_config":                          "no VPCs: instances run on this machine's network",
	"alb_enabled":                         "no load balancer to provision: the Stoke gateway is the front door",
	"alb_vpc_config":                      "no load balancer to provision: the Stoke gateway is the front door",
	"events":                              "no event sources or schedules; invoke through the Lambda Invoke API or HTTP routes (use cron for schedules)",
	"bot_events":                          "no Lex bot events; invoke through the Lambda Invoke API",
	"cognito":                             "no Cognito triggers: no event sources; invoke through the Lambda Invoke API",
	"keep_warm_expression":                "Stoke keeps instances warm continuously; there is no schedule to set",
	"domain":                              whyDomain,
	"base_path":                           whyDomain + "; routes serve at the gateway root",
	"certificate":                         whyDomain,
	"certificate_key":                     whyDomain,
	"certificate_chain":                   whyDomain,
	"certificate_arn":                     whyDomain,
	"route53_enabled":                     whyDomain,
	"lets_encrypt_key":                    whyDomain,
	"cors":                                "the gateway adds no CORS headers; handle CORS in the app (django-cors-headers, Flask-CORS)",
	"api_key_required":                    "the gateway checks no API keys on HTTP routes; check them in the app",
	"api_key":                             "the gateway checks no API keys on HTTP routes; check them in the app",
	"iam_authorization":                   "HTTP routes take no request signing (the Lambda Invoke API does, with SigV4); authenticate in the app",
	"authorization_type":                  "HTTP routes take no request signing (the Lambda Invoke API does, with SigV4); authenticate in the app",
	"authorizer":                          "no custom authorizers; authenticate in the app",
	"apigateway_policy":                   whyAPIGW,
	"endpoint_configuration":              "no API Gateway endpoint types: the gateway listens on listen:",
	"http_methods":                        whyAPIGW + "; every method reaches the app",
	"parameter_depth":                     whyAPIGW + "; every path reaches the app",
	"integration_response_codes":          whyAPIGW,
	"method_response_codes":               whyAPIGW,
	"cache_cluster_enabled":               whyCache,
	"cache_cluster_size":                  whyCache,
	"cache_cluster_ttl":                   whyCache,
	"cache_cluster_encrypted":             whyCache,
	"payload_compression":                 "the gateway does not compress responses; compress in the app (e.g. Django's GZipMiddleware)",
	"payload_minimum_compression_size":    "the gateway does not compress responses; compress in the app (e.g. Django's GZipMiddleware)",
	"cloudwatch_log_level":                whyCW,
	"xray_tracing":                        "no X-Ray: Stoke records its own trace of each invocation (stoke trace)",
	"log_level":                           "sets the root logger's level in Zappa's handler; there is no Zappa handler (configure logging in the app)",
	"debug":                               "Zappa's handler puts tracebacks in 500 responses; there is no Zappa handler: read errors with stoke logs",
	"exception_handler":                   "no exception hook: unhandled exceptions go to the function's log (stoke logs)",
	"context_header_mappings":             "no API Gateway context variables to copy into headers",
	"remote_env":                          "no S3 download at start: copy the file's variables into env",
	"layers":                              "no Lambda layers: install their packages for the python interpreter",
	"lambda_handler":                      "Stoke serves the WSGI app with its own shim; a custom Lambda handler is not used",
	"settings_file":                       "a server-side settings file for Zappa's handler; there is no Zappa handler",
	"callbacks":                           "Zappa's deploy hooks; put a pre-deploy command in build:",
	"async_source":                        whyAsync,
	"async_resources":                     whyAsync,
	"async_response_table":                whyAsync,
	"async_response_table_read_capacity":  whyAsync,
	"async_response_table_write_capacity": whyAsync,
	"dead_letter_arn":                     "no dead-letter queues",
	"architecture":                        "instances run on this machine's CPU architecture",
	"snap_start":                          "Lambda SnapStart; Stoke's python-wsgi forks instances from an initialised template (snapshot: true, the default) instead",
	"function_url_enabled":                "no Lambda function URLs: the gateway's routes serve HTTP",
	"function_url_config":                 "no Lambda function URLs: the gateway's routes serve HTTP",
}
