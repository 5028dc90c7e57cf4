//! The mapping-template evaluator on the examples of AWS's mapping-template
//! reference and on the car-search template, plus arbitrary input.

use proptest::prelude::*;
use serde_json::{json, Value};
use stackctl::local::vtl::{escape_javascript, render, Request};

fn request(body: &str) -> Request {
    let mut r = Request { body: body.into(), ..Default::default() };
    r.path.insert("petId".into(), "7".into());
    r.querystring.insert("token".into(), "v1.abc".into());
    r.querystring.insert("User".into(), "alice".into());
    r.header.insert("Content-Type".into(), "application/json".into());
    r.context = json!({ "requestId": "req-1", "stage": "production", "identity": { "sourceIp": "127.0.0.1" }, "httpMethod": "GET", "resourcePath": "/search" });
    r.stage_variables.insert("version".into(), "v2".into());
    r
}

fn json_of(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}):\n{text}"))
}

#[test]
fn the_car_search_get_template() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf();
    let stack = stackctl::stack::load(&root.join("stacks/car-search.yaml"), "dev").unwrap();
    let get = stack.api.as_ref().unwrap().routes[0].methods.iter().find(|m| m.http_method == "GET").unwrap();
    let stackctl::stack::model::Integration::Aws { request_templates, .. } = &get.integration else { panic!() };
    let mut req = request("");
    req.querystring.insert("CarSize".into(), "compact".into());
    req.querystring.insert("SupplierRating".into(), "4".into());
    let out = render(&request_templates["application/json"], &req).unwrap();
    assert_eq!(json_of(&out), json!({ "token": "v1.abc", "id": "alice", "size": "compact", "rating": "4", "upgrade": "" }));
    // A quote in a parameter cannot break out of the JSON string.
    req.querystring.insert("User".into(), "al\"ice".into());
    let out = render(&request_templates["application/json"], &req).unwrap();
    assert_eq!(json_of(&out)["id"], "al\"ice");
}

#[test]
fn aws_example_passthrough_of_everything() {
    // "Example: Passthrough all parameters" from AWS's mapping template reference.
    let template = r#"#set($allParams = $input.params())
{
"body-json" : $input.json('$'),
"params" : {
#foreach($type in $allParams.keySet())
    #set($params = $allParams.get($type))
"$type" : {
    #foreach($paramName in $params.keySet())
    "$paramName" : "$util.escapeJavaScript($params.get($paramName))"
        #if($foreach.hasNext),#end
    #end
}
    #if($foreach.hasNext),#end
#end
},
"stage-variables" : {
#foreach($key in $stageVariables.keySet())
"$key" : "$util.escapeJavaScript($stageVariables.get($key))"
    #if($foreach.hasNext),#end
#end
},
"context" : {
    "request-id" : "$context.requestId",
    "source-ip" : "$context.identity.sourceIp",
    "stage" : "$context.stage"
    }
}
"#;
    let out = render(template, &request(r#"{"a": [1, 2]}"#)).unwrap();
    let v = json_of(&out);
    assert_eq!(v["body-json"], json!({ "a": [1, 2] }));
    assert_eq!(v["params"]["path"]["petId"], "7");
    assert_eq!(v["params"]["querystring"]["User"], "alice");
    assert_eq!(v["params"]["header"]["Content-Type"], "application/json");
    assert_eq!(v["stage-variables"]["version"], "v2");
    assert_eq!(v["context"], json!({ "request-id": "req-1", "source-ip": "127.0.0.1", "stage": "production" }));
}

#[test]
fn aws_example_photos_with_foreach_and_input_path() {
    let body = r#"{"photos": {"page": 1, "pages": "1234", "perpage": 100, "total": "123398",
        "photo": [
          {"id": "12345678901", "owner": "23456789@A12", "title": "Dancing", "ispublic": true, "isfriend": false, "isfamily": false},
          {"id": "23456789012", "owner": "34567890@B23", "title": "Sleeping", "ispublic": true, "isfriend": false, "isfamily": false}
        ]}}"#;
    let template = r#"#set($inputRoot = $input.path('$'))
{
  "photos": [
#foreach($elem in $inputRoot.photos.photo)
    {
      "id": "$elem.id",
      "photoTitle": "$elem.title",
      "ownerId": "$elem.owner",
      "isPublic": $elem.ispublic,
      "isFriend": $elem.isfriend,
      "isFamily": $elem.isfamily
    }#if($foreach.hasNext),#end

#end
  ]
}"#;
    let v = json_of(&render(template, &request(body)).unwrap());
    assert_eq!(v["photos"].as_array().unwrap().len(), 2);
    assert_eq!(v["photos"][1], json!({ "id": "23456789012", "photoTitle": "Sleeping", "ownerId": "34567890@B23", "isPublic": true, "isFriend": false, "isFamily": false }));
}

#[test]
fn input_json_and_path_select_with_jsonpath() {
    let req = request(r#"{"store": {"book": [{"title": "A", "price": 8}, {"title": "B", "price": 12}]}}"#);
    assert_eq!(render("$input.json('$.store.book[1].title')", &req).unwrap(), "\"B\"");
    assert_eq!(render("$input.json('$.store.book[*].price')", &req).unwrap(), "[8,12]");
    assert_eq!(render("$input.path('$.store.book').size()", &req).unwrap(), "2");
    assert_eq!(render("#set($b = $input.path('$.store.book[0]'))$b.title costs $b.price", &req).unwrap(), "A costs 8");
    assert_eq!(render("$input.json('$.missing')", &req).unwrap(), "null");
    assert_eq!(render("$input.body", &request("raw text")).unwrap(), "raw text");
    assert_eq!(render("$input.params('petId')-$input.params('token')-$input.params('content-type')-[$input.params('nope')]", &req).unwrap(), "7-v1.abc-application/json-[]");
}

#[test]
fn util_functions() {
    let req = request("");
    assert_eq!(render(r#"$util.escapeJavaScript('it''s "x"/y')"#, &req).unwrap(), r#"it\'s \"x\"\/y"#);
    assert_eq!(escape_javascript("a\nb\té"), "a\\nb\\t\\u00E9");
    assert_eq!(render("$util.urlEncode('a b&c=d/é')", &req).unwrap(), "a+b%26c%3Dd%2F%C3%A9");
    assert_eq!(render("$util.urlDecode('a+b%26c')", &req).unwrap(), "a b&c");
    assert_eq!(render("$util.base64Encode('hello')", &req).unwrap(), "aGVsbG8=");
    assert_eq!(render("$util.base64Decode('aGVsbG8=')", &req).unwrap(), "hello");
    assert_eq!(render("#set($o = $util.parseJson('{\"n\": 3, \"l\": [1,2]}'))$o.n $o.l.size()", &req).unwrap(), "3 2");
}

#[test]
fn directives_comments_and_references() {
    let req = request("");
    let t = "## a line comment\n#* a block\ncomment *##set($n = 3)\n#if($n > 5)big#elseif($n == 3)three#else other#end";
    assert_eq!(render(t, &req).unwrap(), "three");
    // A null or undefined reference prints nothing, quiet or not (API Gateway).
    assert_eq!(render("#if(!$missing)none#end|$missing|$!missing|${n}", &req).unwrap(), "none|||");
    assert_eq!(render("#foreach($i in [1..4])$i#if($foreach.hasNext),#end#end", &req).unwrap(), "1,2,3,4");
    assert_eq!(render("#foreach($i in [1, 2, 3])#if($i == 2)#break#end$i#end", &req).unwrap(), "1");
    assert_eq!(render("#set($m = {\"a\": 1, \"b\": \"x\"})$m.a$m.b $m.keySet()", &req).unwrap(), "1x [\"a\",\"b\"]");
    assert_eq!(render("#set($s = \"Hi $context.stage\")$s.toUpperCase() $s.length()", &req).unwrap(), "HI PRODUCTION 13");
    // Velocity 1.7's `#set` takes the spaces before it (its grammar's SET_DIRECTIVE).
    assert_eq!(render("#set($x = 7 * 6 - 2 / 2)$x #set($y = (1 + 2) * 3)$y", &req).unwrap(), "419");
    assert_eq!(render("#set($x = 7 * 6 - 2 / 2)$x #if(true)#set($y = (1 + 2) * 3)#end$y", &req).unwrap(), "41 9");
    assert_eq!(render("#if($context.httpMethod == 'GET' && $context.stage != 'dev')yes#end", &req).unwrap(), "yes");
    assert_eq!(render("price: $5 and #hashtag", &req).unwrap(), "price: $5 and #hashtag");
    assert_eq!(render("$stageVariables.version", &req).unwrap(), "v2");
    assert_eq!(render("#{if}(true)braced#{else}no#{end}", &req).unwrap(), "braced");
}

#[test]
fn errors_name_the_line() {
    let req = request("");
    let e = render("line one\n#if(true)\nnever closed", &req).unwrap_err();
    assert!(e.message.contains("missing `#end`"), "{e}");
    let e = render("ok\n#set($a = )", &req).unwrap_err();
    assert_eq!(e.line, 2, "{e}");
    assert!(render("#end", &req).is_err());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]
    /// Any template renders or fails with an error, never panics.
    #[test]
    fn arbitrary_templates_never_panic(t in "[#$(){}\\[\\]a-z0-9 .,'\"!=<>&|+*/%-]{0,60}") {
        let _ = render(&t, &request("{\"a\": 1}"));
    }

    #[test]
    fn directive_soup_never_panics(parts in prop::collection::vec(prop_oneof![
        Just("#if("), Just("#set($a = "), Just("#foreach($x in "), Just("#end"), Just("#else"), Just("#elseif("),
        Just("$a"), Just("$input.path('$.a')"), Just(")"), Just("["), Just("]"), Just("1"), Just("'s'"), Just("\""),
        Just("##"), Just("#*"), Just("*#"), Just("\n"), Just("$util.escapeJavaScript("), Just("{"), Just("}"), Just(".."),
    ], 0..16)) {
        let t: String = parts.concat();
        let _ = render(&t, &request("{\"a\": [1, {\"b\": 2}]}"));
    }
}

#[test]
fn empty_maps_are_fine() {
    assert_eq!(render("#foreach($k in $input.params().path.keySet())$k#end", &Request::default()).unwrap(), "");
}
