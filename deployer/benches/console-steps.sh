#!/usr/bin/env bash
# The two tutorials' console steps, scripted as sequential awscli calls: what a
# user automating the tutorials (seeds/000 and seeds/001) would run. Used by the
# control_plane bench as the baseline, against the same emulator and proxy.
# Usage: console-steps.sh PARAPHRASE_ZIP SEARCH_START_ZIP SEARCH_WORKER_ZIP
set -euo pipefail
AWS=${AWS:-aws}
# `command`: with the default AWS=aws, "$AWS" would call this function itself, forever.
aws() { command "$AWS" --endpoint-url "$AWS_ENDPOINT_URL" --output text "$@"; }
P_ZIP=$1 S_ZIP=$2 W_ZIP=$3
ACCOUNT=123456789012
REGION=${AWS_DEFAULT_REGION}
TRUST='{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]}'

role() { # name policy
    aws iam create-role --role-name "$1" --assume-role-policy-document "$TRUST" --query Role.Arn
    aws iam put-role-policy --role-name "$1" --policy-name inline --policy-document "$2" >/dev/null
}
function_() { # name role-arn zip env
    aws lambda create-function --function-name "$1" --runtime provided.al2023 --handler bootstrap \
        --role "$2" --zip-file "fileb://$3" --environment "Variables={$4}" --query FunctionArn >/dev/null
    aws lambda wait function-active-v2 --function-name "$1"
}
method() { # api resource verb function-arn type [request-templates-json]
    aws apigateway put-method --rest-api-id "$1" --resource-id "$2" --http-method "$3" --authorization-type NONE >/dev/null
    aws apigateway put-integration --rest-api-id "$1" --resource-id "$2" --http-method "$3" --type "$5" \
        --integration-http-method POST --uri "arn:aws:apigateway:$REGION:lambda:path/2015-03-31/functions/$4/invocations" \
        ${6:+--request-templates "$6"} >/dev/null
    aws apigateway put-method-response --rest-api-id "$1" --resource-id "$2" --http-method "$3" --status-code 200 >/dev/null
    aws apigateway put-integration-response --rest-api-id "$1" --resource-id "$2" --http-method "$3" --status-code 200 --selection-pattern "" >/dev/null
}
cors() { # api resource methods
    aws apigateway put-method --rest-api-id "$1" --resource-id "$2" --http-method OPTIONS --authorization-type NONE >/dev/null
    aws apigateway put-integration --rest-api-id "$1" --resource-id "$2" --http-method OPTIONS --type MOCK \
        --request-templates '{"application/json":"{\"statusCode\": 200}"}' >/dev/null
    aws apigateway put-method-response --rest-api-id "$1" --resource-id "$2" --http-method OPTIONS --status-code 200 \
        --response-parameters '{"method.response.header.Access-Control-Allow-Origin":false,"method.response.header.Access-Control-Allow-Methods":false,"method.response.header.Access-Control-Allow-Headers":false}' >/dev/null
    aws apigateway put-integration-response --rest-api-id "$1" --resource-id "$2" --http-method OPTIONS --status-code 200 \
        --response-parameters "{\"method.response.header.Access-Control-Allow-Origin\":\"'*'\",\"method.response.header.Access-Control-Allow-Methods\":\"'$3'\",\"method.response.header.Access-Control-Allow-Headers\":\"'Content-Type'\"}" >/dev/null
}

# Tutorial 1: the paraphrasing endpoint.
P_ROLE=$(role console-paraphrase '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["logs:CreateLogStream","logs:PutLogEvents"],"Resource":"*"}]}')
function_ console-paraphrase "$P_ROLE" "$P_ZIP" "RUST_LOG=info"
P_ARN="arn:aws:lambda:$REGION:$ACCOUNT:function:console-paraphrase"
API=$(aws apigateway create-rest-api --name console-paraphrase --endpoint-configuration types=EDGE --query id)
ROOT=$(aws apigateway get-resources --rest-api-id "$API" --query 'items[0].id')
RES=$(aws apigateway create-resource --rest-api-id "$API" --parent-id "$ROOT" --path-part paraphrase --query id)
method "$API" "$RES" POST "$P_ARN" AWS_PROXY
cors "$API" "$RES" POST,OPTIONS
aws lambda add-permission --function-name console-paraphrase --statement-id apigw --action lambda:InvokeFunction \
    --principal apigateway.amazonaws.com --source-arn "arn:aws:execute-api:$REGION:$ACCOUNT:$API/*/POST/paraphrase" >/dev/null
aws apigateway create-deployment --rest-api-id "$API" --stage-name production >/dev/null

# Tutorial 2: the asynchronous search API with the S3 result cache.
BUCKET=console-car-search-results
aws s3api create-bucket --bucket "$BUCKET" --create-bucket-configuration "LocationConstraint=$REGION" >/dev/null
aws s3api put-bucket-lifecycle-configuration --bucket "$BUCKET" \
    --lifecycle-configuration '{"Rules":[{"ID":"expire-results","Filter":{"Prefix":"results/"},"Status":"Enabled","Expiration":{"Days":1}}]}'
W_ROLE=$(role console-search-worker "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Action\":[\"s3:GetObject\",\"s3:PutObject\"],\"Resource\":\"arn:aws:s3:::$BUCKET/results/*\"}]}")
function_ console-search-worker "$W_ROLE" "$W_ZIP" "RESULTS_BUCKET=$BUCKET,RESULTS_PREFIX=results/"
W_ARN="arn:aws:lambda:$REGION:$ACCOUNT:function:console-search-worker"
S_ROLE=$(role console-search-start "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Action\":\"lambda:InvokeFunction\",\"Resource\":\"$W_ARN\"}]}")
function_ console-search-start "$S_ROLE" "$S_ZIP" "WORKER_FUNCTION=console-search-worker"
S_ARN="arn:aws:lambda:$REGION:$ACCOUNT:function:console-search-start"
API=$(aws apigateway create-rest-api --name console-car-search --endpoint-configuration types=EDGE --query id)
ROOT=$(aws apigateway get-resources --rest-api-id "$API" --query 'items[0].id')
RES=$(aws apigateway create-resource --rest-api-id "$API" --parent-id "$ROOT" --path-part search --query id)
method "$API" "$RES" POST "$S_ARN" AWS_PROXY
TEMPLATES='{"application/json":"{\"token\": \"$input.params(\u0027token\u0027)\", \"id\": \"$input.params(\u0027User\u0027)\"}"}'
method "$API" "$RES" GET "$W_ARN" AWS "$TEMPLATES"
cors "$API" "$RES" POST,GET,OPTIONS
aws lambda add-permission --function-name console-search-start --statement-id apigw-post --action lambda:InvokeFunction \
    --principal apigateway.amazonaws.com --source-arn "arn:aws:execute-api:$REGION:$ACCOUNT:$API/*/POST/search" >/dev/null
aws lambda add-permission --function-name console-search-worker --statement-id apigw-get --action lambda:InvokeFunction \
    --principal apigateway.amazonaws.com --source-arn "arn:aws:execute-api:$REGION:$ACCOUNT:$API/*/GET/search" >/dev/null
aws apigateway create-deployment --rest-api-id "$API" --stage-name production >/dev/null
echo "console steps done"
