"""The XLSForm converter against pyxform, the reference converter, as a differential oracle.

For every workbook in this directory, pyxform's JSON reading (`xls2json`, no Java needed) and
`survey-server xlsform` must agree: every workbook pyxform refuses is refused; for the others,
every field pyxform finds is in the JSON Schema at the same path (`/data/g/q` is `/g/q`, repeats
through `items`) with the mapped type, the default language's label as its title, the same
choices, and its required/relevant/repeat_count as the mapping says (docs/xlsform.md).

Needs pyxform (PyPI, installed by scripts/test) and the binary `cargo build` made.
"""
import json
import pathlib
import subprocess
import unittest

from pyxform.errors import PyXFormError
from pyxform.xls2json import parse_file_to_json

HERE = pathlib.Path(__file__).resolve().parent
BINARY = HERE.parent.parent / 'target' / 'debug' / 'survey-server'
WORKBOOKS = sorted(p for p in HERE.iterdir() if p.suffix in ('.xlsx', '.xls'))
META = {'start': 'started_at', 'end': 'completed_at', 'deviceid': 'device_id'}
SCALARS = {
    'text': {'type': 'string'}, 'integer': {'type': 'integer'}, 'decimal': {'type': 'number'},
    'date': {'type': 'string', 'format': 'date'}, 'time': {'type': 'string', 'format': 'time'},
    'dateTime': {'type': 'string', 'format': 'date-time'},
}
MEDIA = {'photo': 'image/', 'audio': 'audio/', 'file': 'application/'}


def reference(path):
    """pyxform's reading of the workbook, or None when it refuses it."""
    try:
        return parse_file_to_json(str(path), warnings=[])
    except PyXFormError:
        return None


def ours(path):
    """(converted, schema or the problems) from `survey-server xlsform`."""
    run = subprocess.run([str(BINARY), 'xlsform', str(path), '--lang', 'en'],
                         capture_output=True, text=True, env={'SURVEY_LOG': 'error'})
    if run.returncode == 0:
        return True, json.loads(run.stdout)
    return False, run.stderr


def label_in(element, language):
    label = element.get('label')
    if isinstance(label, dict):
        return label.get(language)
    return label


class AgainstPyxform(unittest.TestCase):
    def test_the_corpus_has_workbooks_both_accept_and_ones_both_refuse(self):
        readings = [reference(p) for p in WORKBOOKS]
        self.assertGreaterEqual(sum(r is not None for r in readings), 3)
        self.assertGreaterEqual(sum(r is None for r in readings), 3)

    def test_every_workbook_pyxform_refuses_is_refused(self):
        for path in WORKBOOKS:
            if reference(path) is None:
                with self.subTest(workbook=path.name):
                    converted, problems = ours(path)
                    self.assertFalse(converted, f'{path.name} was converted though pyxform refuses it')
                    self.assertIn('/survey/', problems)

    def test_every_field_pyxform_finds_is_in_the_schema_as_the_mapping_says(self):
        for path in WORKBOOKS:
            survey = reference(path)
            if survey is None:
                continue
            with self.subTest(workbook=path.name):
                converted, schema = ours(path)
                self.assertTrue(converted, f'{path.name}: {schema}')
                self.assertEqual(schema['x-form-id'], survey['id_string'])
                self.assertEqual(schema['x-form-version'], survey['version'])
                self.assertEqual(schema['title'], survey['title'])
                language = survey.get('default_language', 'default')
                checked = self.compare(survey, survey['children'], schema, schema, '', language)
                self.assertGreater(checked, 3, f'{path.name}: too few fields compared')

    def compare(self, survey, children, object_schema, root, pointer, language):
        """Checks each child of a group (or the survey) in `object_schema`; how many were checked."""
        checked = 0
        counts = {c['control']['jr:count'] for c in children
                  if c['type'] == 'repeat' and 'jr:count' in c.get('control', {})}
        for child in children:
            name, kind = child['name'], child['type']
            where = f'{pointer}/{name}'
            if kind == 'note' or (name == 'meta' and child.get('control', {}).get('bodyless')):
                continue
            if kind == 'calculate' and f'${{{name}}}' in counts:
                continue  # pyxform's own count of a repeat_count: minItems/maxItems here
            if kind in META:
                self.assertIn(META[kind], root.get('x-meta', []), where)
                continue
            if kind in ('username', 'today'):
                self.assertNotIn(name, object_schema['properties'], where)
                continue
            self.assertIn(name, object_schema['properties'], f'{where} is not in the schema')
            field = object_schema['properties'][name]
            label = label_in(child, language)
            if label is not None:
                self.assertEqual(field.get('title'), label, f'{where}: title')
            self.check_type(survey, child, field, where, language, children)
            self.check_bind(child, field, object_schema, root, where)
            if kind == 'group':
                checked += self.compare(survey, child['children'], field, root, where, language)
            elif kind == 'repeat':
                checked += self.compare(survey, child['children'], field['items'], root, where, language)
            checked += 1
        return checked

    def check_type(self, survey, child, field, where, language, siblings):
        kind = child['type']
        if kind in SCALARS:
            for key, value in SCALARS[kind].items():
                self.assertEqual(field.get(key), value, f'{where}: {key}')
        elif kind in ('select one', 'select all that apply'):
            choices = survey['choices'][child['itemset']]
            names = [c['name'] for c in choices]
            labels = {c['name']: label_in(c, language) for c in choices}
            listed = field if kind == 'select one' else field['items']
            if kind == 'select all that apply':
                self.assertEqual(field['type'], 'array', where)
                self.assertTrue(field['uniqueItems'], where)
            if listed.get('type') == 'boolean':
                self.assertEqual(set(names), {'true', 'false'}, where)
            else:
                self.assertEqual(listed['enum'], names, f'{where}: choices')
            self.assertEqual(listed['x-labels'], labels, f'{where}: choice labels')
        elif kind == 'geopoint':
            self.assertEqual(field['type'], 'object', where)
            self.assertEqual(set(field['required']), {'lat', 'lon'}, where)
        elif kind in MEDIA:
            self.assertTrue(field['contentMediaType'].startswith(MEDIA[kind]), where)
        elif kind == 'calculate':
            self.assertEqual(field['x-calculation'], child['bind']['calculate'], where)
        elif kind == 'acknowledge':
            self.assertIs(field['const'], True, where)
        elif kind == 'group':
            self.assertEqual(field['type'], 'object', where)
        elif kind == 'repeat':
            self.assertEqual(field['type'], 'array', where)
            self.assertEqual(field['items']['type'], 'object', where)
            count = child.get('control', {}).get('jr:count')
            if count:
                counter = next(s for s in siblings if f"${{{s['name']}}}" == count)
                n = int(counter['bind']['calculate'])
                self.assertEqual((field['minItems'], field['maxItems']), (n, n), where)
        else:
            self.fail(f'{where}: pyxform type {kind} is not in the mapping')

    def check_bind(self, child, field, object_schema, root, where):
        bind = child.get('bind', {})
        name = child['name']
        required = bind.get('required') in ('yes', 'true()', 'true')
        relevant = bind.get('relevant')
        if relevant:
            self.assertNotIn(name, object_schema.get('required', []), f'{where}: required only when relevant')
            self.assertTrue(f'"{name}": false' in json.dumps(root), f'{where}: not asked when not relevant')
            if required:
                self.assertRegex(json.dumps(root), f'"then": {{[^}}]*"required": \\[[^\\]]*"{name}"',
                                 f'{where}: required when relevant')
        elif required:
            self.assertIn(name, object_schema.get('required', []), f'{where}: required')


if __name__ == '__main__':
    unittest.main()
