"""Unit tests for minidock.gotemplate (docker --format rendering).

Expected strings marked "docker" were checked against docker CLI 28.2.2's own
template engine (``docker context inspect -f``/``docker context ls --format``).
"""

from __future__ import annotations

import pytest

from minidock.gotemplate import (
    KNOWN_STRUCT_KEYS,
    GoStruct,
    TemplateError,
    compile_template,
    render,
    render_table,
    tabulate,
    unescape_format,
)

BRIDGE = {
    "Name": "bridge",
    "Id": "0123456789abcdef0123456789abcdef",
    "Driver": "bridge",
    "EnableIPv6": False,
    "IPAM": {
        "Driver": "default",
        "Options": None,
        "Config": [{"Subnet": "172.17.0.0/16", "Gateway": "172.17.0.1"}],
    },
    "Containers": {
        "c0ffee": {"Name": "web", "EndpointID": "e1", "MacAddress": "02:42:ac:11:00:02",
                   "IPv4Address": "172.17.0.2/16", "IPv6Address": ""},
    },
    "Options": {
        "com.docker.network.bridge.enable_icc": "true",
        "com.docker.network.bridge.default_bridge": "true",
        "com.docker.network.driver.mtu": "1500",
        "com.docker.network.bridge.name": "docker0",
    },
    "Labels": {},
}

DATA = {
    "Name": "bridge", "List": ["a", "b", "c"], "Ints": [1, 2], "Empty": "", "EmptyList": [],
    "EmptyMap": {}, "Nil": None, "T": True, "F": 1.5, "Small": 5, "Big": 1234567.0,
    "Map": {"b": "2", "a": "1", "c": {"z": 1, "y": None}}, "Labels": {"x": "1"},
    "NetworkSettings": {"Networks": {"bridge": {"IPAddress": "172.17.0.2"}}},
}


def err(template: str, data: object = None) -> str:
    with pytest.raises(TemplateError) as exc:
        render(template, DATA if data is None else data)
    msg = str(exc.value)
    assert "\n" not in msg and msg.startswith("template parsing error: template: :")
    return msg


# --- the three real docker examples -------------------------------------------------------

def test_ipam_config_prints_as_go_structs() -> None:
    assert render("{{.IPAM.Config}}", BRIDGE) == "[{172.17.0.0/16  172.17.0.1 map[]}]"


def test_options_print_as_sorted_go_map() -> None:
    assert render("{{.Options}}", BRIDGE) == (
        "map[com.docker.network.bridge.default_bridge:true "
        "com.docker.network.bridge.enable_icc:true com.docker.network.bridge.name:docker0 "
        "com.docker.network.driver.mtu:1500]")


def test_json_ipam_config_is_compact_in_dict_order() -> None:
    assert render("{{json .IPAM.Config}}", BRIDGE) == \
        '[{"Subnet":"172.17.0.0/16","Gateway":"172.17.0.1"}]'


# --- values and fields -------------------------------------------------------------------

def test_plain_text_and_fields() -> None:
    assert render("no actions", {}) == "no actions"
    assert render("net={{.Name}} driver={{.IPAM.Driver}}", BRIDGE) == "net=bridge driver=default"
    assert render("{{.NetworkSettings.Networks.bridge.IPAddress}}", DATA) == "172.17.0.2"


def test_missing_keys_print_no_value() -> None:
    assert render("{{.Missing}}|{{.Missing.Deeper}}|{{.Map.nope}}", DATA) == \
        "<no value>|<no value>|<no value>"


def test_go_value_formatting() -> None:  # docker
    assert render("{{.List}}|{{.Ints}}|{{.Map}}|{{.T}}|{{.F}}|{{.Small}}|{{.EmptyList}}|"
                  "{{.EmptyMap}}|{{.Empty}}|{{.Nil}}", DATA) == \
        "[a b c]|[1 2]|map[a:1 b:2 c:map[y:<nil> z:1]]|true|1.5|5|[]|map[]||<nil>"


def test_floats_print_like_go() -> None:  # docker
    assert render("{{.Big}} {{100000.0}} {{1e-5}} {{1.5e3}} {{.5}}", DATA) == \
        "1.234567e+06 100000 1e-05 1500 0.5"


def test_dot_and_root_variable() -> None:
    assert render("{{with .IPAM}}{{.Driver}}/{{$.Name}}{{end}}", BRIDGE) == "default/bridge"
    assert render("{{.}}", "plain") == "plain"


def test_struct_zero_values_fill_missing_fields() -> None:
    state = {"State": {"Status": "running", "Running": True, "Pid": 42,
                       "StartedAt": "2024-01-01T00:00:00Z", "FinishedAt": "0001-01-01T00:00:00Z"}}
    assert render("{{.State}}", state) == (
        "{running true false false false false 42 0  2024-01-01T00:00:00Z "
        "0001-01-01T00:00:00Z <nil>}")
    assert render("[{{(index .IPAM.Config 0).IPRange}}] {{.IPAM.Options}}", BRIDGE) == "[] map[]"


def test_map_of_structs_and_lists_of_structs() -> None:
    assert render("{{.Containers}}", BRIDGE) == \
        "map[c0ffee:{web e1 02:42:ac:11:00:02 172.17.0.2/16 }]"
    container = {
        "Mounts": [{"Type": "bind", "Source": "/a", "Destination": "/b", "Mode": "",
                    "RW": True, "Propagation": "rprivate"}],
        "Config": {"ExposedPorts": {"80/tcp": {}}},
        "NetworkSettings": {"Ports": {"80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8080"}],
                                      "81/tcp": None}},
    }
    assert render("{{.Mounts}} {{.Config.ExposedPorts}} {{.NetworkSettings.Ports}}",
                  container) == ("[{bind  /a /b   true rprivate}] map[80/tcp:{}] "
                                 "map[80/tcp:[{0.0.0.0 8080}] 81/tcp:[]]")


def test_struct_fields_argument_and_gostruct() -> None:
    ctx = {"Endpoints": {"docker": {"Host": "unix:///var/run/docker.sock",
                                    "SkipTLSVerify": False}}}
    assert render("{{.Endpoints}}", ctx, {"Endpoints.*": ["Host", "SkipTLSVerify:bool"]}) == \
        "map[docker:{unix:///var/run/docker.sock false}]"  # docker
    assert render("{{.Endpoints}}", ctx) == \
        "map[docker:map[Host:unix:///var/run/docker.sock SkipTLSVerify:false]]"
    assert render("{{.}}", GoStruct(a=1, b="", c=[1])) == "{1  [1]}"
    assert render("{{.}}", {"a": 1, "b": None}, {"": ["b:list", "a"]}) == "{[] 1}"  # root
    assert "IPAM.Config" in KNOWN_STRUCT_KEYS


def test_plus_v_prints_struct_field_names() -> None:
    assert render('{{printf "%+v" .IPAM.Config}}', BRIDGE) == \
        "[{Subnet:172.17.0.0/16 IPRange: Gateway:172.17.0.1 AuxiliaryAddresses:map[]}]"


# --- actions -----------------------------------------------------------------------------

def test_range_list_with_else() -> None:  # docker
    assert render("{{range .List}}<{{.}}>{{else}}none{{end}}|"
                  "{{range .EmptyList}}x{{else}}none{{end}}|{{range .Nil}}x{{else}}nil{{end}}",
                  DATA) == "<a><b><c>|none|nil"


def test_range_map_with_key_value_sorted() -> None:  # docker
    assert render("{{range $k, $v := .Map}}{{$k}}={{$v}};{{end}}", DATA) == \
        "a=1;b=2;c=map[y:<nil> z:1];"
    assert render("{{range $i, $e := .List}}{{$i}}:{{$e}} {{end}}", DATA) == "0:a 1:b 2:c "
    assert render("{{range $e := .List}}{{$e}}{{end}}", DATA) == "abc"


def test_range_elements_keep_struct_printing() -> None:
    assert render("{{range .IPAM.Config}}{{.}}{{end}}", BRIDGE) == \
        "{172.17.0.0/16  172.17.0.1 map[]}"


def test_break_continue_and_range_int() -> None:  # docker
    assert render('{{range .List}}{{if eq . "b"}}{{break}}{{end}}{{.}}{{end}}|'
                  '{{range .List}}{{if eq . "b"}}{{continue}}{{end}}{{.}}{{end}}|'
                  "{{range 3}}{{.}}{{end}}", DATA) == "a|ac|012"


def test_if_else_if_chain() -> None:  # docker
    tmpl = ("{{if .Empty}}a{{else if .EmptyList}}b{{else if .EmptyMap}}c"
            "{{else if .Small}}d{{else}}e{{end}}")
    assert render(tmpl, DATA) == "d"


@pytest.mark.parametrize(("value", "truth"), [
    ("", False), ("x", True), (0, False), (3, True), (0.0, False), (False, False), (True, True),
    (None, False), ([], False), ([0], True), ({}, False), ({"a": 1}, True),
])
def test_go_truthiness(value: object, truth: bool) -> None:
    assert render("{{if .V}}T{{else}}F{{end}}", {"V": value}) == ("T" if truth else "F")


def test_with_and_else_with() -> None:  # docker
    assert render("{{with .Empty}}x{{else}}empty{{end}}", DATA) == "empty"
    assert render("{{with .Nope}}a{{else with .Map}}{{.a}}{{end}}", DATA) == "1"


def test_variables_declare_assign_and_scope() -> None:  # docker
    assert render('{{$x := .Name}}{{$x}}{{$x = "y"}}{{$x}}', DATA) == "bridgey"
    assert render("{{$x := 1}}{{if true}}{{$x = 2}}{{$y := 3}}{{end}}{{$x}}", DATA) == "2"
    assert "undefined variable" in err("{{if true}}{{$y := 3}}{{end}}{{$y}}")


def test_trim_markers_and_comments() -> None:  # docker
    assert render('a  {{- "b" -}}  c {{- /* comment */ -}} d {{/* c2 */}} e', {}) == "abcd  e"
    assert render("x\n  {{- .Name }}\n", DATA) == "xbridge\n"
    assert render("{{-3}}", {}) == "-3"


def test_literals() -> None:  # docker
    assert render(r'{{`raw "x"`}}|{{"esc\t\u00e9\x41\101"}}|{{' + "'a'" + r"}}|{{0x1F}}|"
                  r"{{1_000}}|{{017}}|{{-5}}|{{true}}", {}) == 'raw "x"|esc\téAA|97|31|1000|15|-5|true'


def test_pipelines_and_parentheses() -> None:  # docker
    assert render('{{.Name | upper | printf "%s!"}}|{{"x" | printf "%s-%s" "y"}}', DATA) == \
        "BRIDGE!|y-x"
    assert render('{{index (index .Map "c") "z"}}|{{(index .Map "c").z}}', DATA) == "1|1"
    assert render('{{index (index .Networks "bridge") "IPAddress"}}',
                  DATA["NetworkSettings"]) == "172.17.0.2"


# --- functions ---------------------------------------------------------------------------

def test_json_function() -> None:
    assert render("{{json .Map}}", DATA) == '{"b":"2","a":"1","c":{"z":1,"y":null}}'
    assert render('{{json "héllo <&>"}}|{{json .Nil}}|{{json .F}}|{{json 1.0}}|{{json .T}}',
                  DATA) == '"héllo <&>"|null|1.5|1|true'


def test_index_and_len() -> None:  # docker
    assert render('{{index .Map "a"}}|{{index .List 1}}|{{index .Map "c" "z"}}|'
                  '{{index .Map "nope"}}', DATA) == "1|b|1|<no value>"
    assert render('[{{index .Labels "nope"}}]', DATA) == "[]"  # map[string]string zero value
    assert render('{{len .List}} {{len .Map}} {{len "héllo"}}', DATA) == "3 3 6"


def test_string_functions() -> None:  # docker
    assert render('{{join .List ", "}}|{{split "a,b,,c" ","}}|{{upper "abc"}}|{{lower "ABC"}}|'
                  '{{title "hello wOrld-foo bar_baz x.y"}}|{{upper "straße"}}', DATA) == \
        "a, b, c|[a b  c]|ABC|abc|Hello WOrld-Foo Bar_baz X.Y|STRAßE"


def test_truncate_and_pad() -> None:  # docker
    assert render('{{truncate .Id 12}}|{{truncate "abc" 12}}|{{pad "abc" 1 2}}|{{pad "" 1 2}}|',
                  BRIDGE) == "0123456789ab|abc| abc  ||"


def test_printf_verbs() -> None:  # docker
    assert render('{{printf "%s|%d|%v|%q|%5s|%-5s|%05d|%x|%X|%t|%.2f|%e|%g" "a" 3 .List '
                  r'"q\"\n" "ab" "ab" 42 "hi" 255 true 3.14159 1234.5 0.000001}}', DATA) == \
        'a|3|[a b c]|"q\\"\\n"|   ab|ab   |00042|6869|FF|true|3.14|1.234500e+03|1e-06'
    assert render('{{printf "%d %s" 1}}|{{printf "%d" 1 2 "x"}}|{{printf "%d" "x"}}|'
                  '{{printf "%s" 5}}|{{printf "%s" .Nil}}|{{printf "%T %q %c" 1 65 65}}', DATA) == \
        ("1 %!s(MISSING)|1%!(EXTRA int=2, string=x)|%!d(string=x)|%!s(int=5)|%!s(<nil>)|"
         "int 'A' A")


def test_print_and_println() -> None:  # docker
    assert render('{{print "a" "b" 1 2 "c" 3}}|{{print 1 2}}|{{println "a" 1 "b"}}|'
                  "{{print .Nil}}", DATA) == "ab1 2c3|1 2|a 1 b\n|<nil>"


def test_comparisons_and_logic() -> None:  # docker
    assert render('{{eq 1 1}} {{eq "a" "b" "a"}} {{ne 1 2}} {{eq .Name "bridge"}} '
                  '{{lt 1 2}} {{ge "b" "a"}}', DATA) == "true true true true true true"
    assert render('{{and 1 0 2}}|{{and 1 2}}|{{or 0 "" "x"}}|{{or 0 ""}}|{{not 0}}', DATA) == \
        "0|2|x||true"
    assert render("{{if and .T (not .Empty)}}yes{{end}}", DATA) == "yes"


def test_html_urlquery_slice() -> None:  # docker
    assert render("{{html \"<a href='x'>&\\\"</a>\"}}", {}) == \
        "&lt;a href=&#39;x&#39;&gt;&amp;&#34;&lt;/a&gt;"
    assert render('{{urlquery "a b&c/d"}}|{{slice "abcdef" 1 3}}', {}) == "a+b%26c%2Fd|bc"


# --- errors ------------------------------------------------------------------------------

@pytest.mark.parametrize(("template", "message"), [  # docker's wording
    ("{{foo}}", 'template: :1: function "foo" not defined'),
    ("{{.X", "template: :1: unclosed action"),
    ("{{if 1}}", "template: :1: unexpected EOF"),
    ("{{end}}", "template: :1: unexpected {{end}}"),
    ("{{if 1}}{{else}}{{else}}{{end}}", "template: :1: expected end; found {{else}}"),
    ("{{$y}}", 'template: :1: undefined variable "$y"'),
    ("{{1x}}", 'template: :1: bad number syntax: "1x"'),
    ('{{"abc}}', "template: :1: unterminated quoted string"),
    ("{{`abc}}", "template: :1: unterminated raw quoted string"),
    ("{{#}}", 'template: :1: unexpected "#" in command'),
    ("{{(1}}", "template: :1: unclosed left paren"),
    ("{{)}}", "template: :1: unexpected right paren"),
    ("{{}}", "template: :1: missing value for command"),
    ("{{.X | 1}}", "template: :1: non executable command in pipeline stage 2"),
    ("{{$x, $y := 1}}", "template: :1: too many declarations in command"),
    ("{{range $x, 1}}{{end}}", "template: :1: range can only initialize variables"),
    ("{{break}}", "template: :1: {{break}} outside {{range}}"),
    ('{{"x".Foo}}', 'template: :1: unexpected . after term "\\"x\\""'),
    ("line1\n{{foo}}", 'template: :2: function "foo" not defined'),
    ('{{index "abc" 99}}', 'template: :1:2: executing "" at <index "abc" 99>: '
                           "error calling index: index out of range: 99"),
    ('{{join "a"}}', 'template: :1:2: executing "" at <join>: '
                     "wrong number of args for join: want 2 got 1"),
    ('{{"a" "b"}}', 'template: :1:2: executing "" at <"a">: '
                    'can\'t give argument to non-function "a"'),
    ("{{eq 1 \"a\"}}", 'template: :1:2: executing "" at <eq 1 "a">: '
                       "error calling eq: incompatible types for comparison"),
    ("{{nil}}", 'template: :1:2: executing "" at <nil>: nil is not a command'),
    ('{{range "abc"}}{{end}}', 'template: :1:8: executing "" at <"abc">: '
                               "range can't iterate over abc"),
])
def test_error_messages(template: str, message: str) -> None:
    assert err(template) == "template parsing error: " + message


def test_exec_errors() -> None:
    assert err("{{.Name.Foo}}").endswith("can't evaluate field Foo in type string")
    assert err("{{upper 1}}").endswith("wrong type for value; expected string; got int")
    assert err("{{len 3}}").endswith("error calling len: len of type int")


def test_compile_once_execute_many() -> None:
    tmpl = compile_template("{{.Name}}")
    assert compile_template("{{.Name}}") is tmpl
    assert [tmpl.execute({"Name": n}) for n in ("a", "b")] == ["a", "b"]
    with pytest.raises(TemplateError):
        compile_template("{{")


# --- tables ------------------------------------------------------------------------------

NETS = [
    {"ID": "0123456789ab", "Name": "bridge", "Driver": "bridge", "Scope": "local"},
    {"ID": "ba9876543210", "Name": "host", "Driver": "host", "Scope": "local"},
    {"ID": "fedcba987654", "Name": "a-much-longer-name", "Driver": "macvlan", "Scope": "local"},
]
HEADERS = {"ID": "NETWORK ID", "Name": "NAME", "Driver": "DRIVER", "Scope": "SCOPE"}


def test_tabulate_matches_docker_network_ls() -> None:
    rows = [["NETWORK ID", "NAME", "DRIVER", "SCOPE"]]
    rows += [[n["ID"], n["Name"], n["Driver"], n["Scope"]] for n in NETS[:2]]
    assert tabulate(rows) == (
        "NETWORK ID     NAME      DRIVER    SCOPE\n"
        "0123456789ab   bridge    bridge    local\n"
        "ba9876543210   host      host      local\n")


def test_tabulate_widths_minwidth_padding_and_last_column() -> None:
    assert tabulate([["a", "bb"], ["ccc", "d"]]) == "a         bb\nccc       d\n"
    assert tabulate([["x" * 12, "y", "last-not-padded"]]) == \
        "xxxxxxxxxxxx   y         last-not-padded\n"
    assert tabulate([["", "b"], ["a", ""]]) == "          b\na         \n"
    assert tabulate([]) == ""


def test_tabulate_column_blocks_like_go() -> None:
    # Lines without a cell in a column end that column's block (Go tabwriter semantics,
    # checked against docker context ls).
    assert tabulate([["bb", "x", "X"], ["cccccccccccc", "X"], ["ctx1", "X"]]) == (
        "bb             x         X\n"
        "cccccccccccc   X\n"
        "ctx1           X\n")
    assert tabulate([["a", "b"], ["single"], ["ccccccccccccc", "d"]]) == (
        "a         b\nsingle\nccccccccccccc   d\n")


def test_render_table_header_and_rows() -> None:
    assert render_table(r"table {{.ID}}\t{{.Name}}\t{{.Driver}}", NETS, HEADERS) == (
        "NETWORK ID     NAME                 DRIVER\n"
        "0123456789ab   bridge               bridge\n"
        "ba9876543210   host                 host\n"
        "fedcba987654   a-much-longer-name   macvlan\n")


def test_render_table_header_functions_unknown_fields_and_no_rows() -> None:
    assert render_table("table {{upper .Name}}\t{{truncate .Driver 3}}\t{{.Foo}}", NETS[:1],
                        HEADERS) == "NAME      DRIVER    FOO\nBRIDGE    bri       <no value>\n"
    assert render_table("table {{.ID}}\t{{.Name}}", [], HEADERS) == "NETWORK ID   NAME\n"


def test_unescape_format() -> None:
    assert unescape_format(r"  {{.ID}}\t{{.Name}}\n ") == "{{.ID}}\t{{.Name}}\n"
