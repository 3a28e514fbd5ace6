// The schema walker: questions hidden and required by the answers, answers left out when hidden,
// ID numbers read, and the server's message framing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { conditions, prune, kindOf, choicesOf, itemLabel, itemName, numberFrom, isHidden, deref, hintOf } from '../../src/web/js/schema/walk.js';
import { residentId, isMobile, normalize } from '../../src/web/js/schema/resident-id.js';
import { message, describe } from '../../src/web/js/schema/messages.js';
import * as pointer from '../../src/web/js/schema/pointer.js';

const schema = JSON.parse(readFileSync(new URL('../../schemas/labour-survey.json', import.meta.url)));
const member = schema.properties.members.items;

test('nobody is asked about work or its absence before saying whether they work', () => {
  const { hidden } = conditions(schema, member, { name: '黄秀英' });
  for (const name of ['work_location', 'job_type', 'employer', 'monthly_income', 'unemployed_reason', 'willing_to_work']) {
    assert.ok(hidden.has(name), name);
  }
});

test('an unemployed labourer is never asked for income, and must give a reason', () => {
  const { hidden, required } = conditions(schema, member, { employment_status: 'unemployed' });
  assert.ok(hidden.has('monthly_income') && hidden.has('work_location'));
  assert.ok(!hidden.has('unemployed_reason') && required.has('unemployed_reason') && required.has('willing_to_work'));
});

test('an employed labourer must say where and for how much', () => {
  const { hidden, required } = conditions(schema, member, { employment_status: 'stable' });
  assert.ok(hidden.has('unemployed_reason') && !hidden.has('monthly_income'));
  assert.ok(required.has('work_location') && required.has('job_type') && required.has('monthly_income'));
});

test('hidden answers stay in the draft but are not sent; empty answers are dropped', () => {
  const answers = {
    relocated: false, settlement: '那坡安置点', village: '',
    members: [{ employment_status: 'unemployed', monthly_income: 3000, unemployed_reason: 'too_old', trainings_wanted: [] }],
  };
  assert.deepEqual(prune(schema, schema, answers), {
    relocated: false, members: [{ employment_status: 'unemployed', unemployed_reason: 'too_old' }],
  });
});

test('questions are of the kind their schema says', () => {
  const kinds = Object.fromEntries(Object.entries(member.properties).map(([n, s]) => [n, kindOf(schema, s)]));
  assert.equal(kinds.id_number, 'resident-id');
  assert.equal(kinds.phone, 'mobile');
  assert.equal(kinds.birth_date, 'date');
  assert.equal(kinds.gender, 'choice');
  assert.equal(kinds.trainings_wanted, 'choices');
  assert.equal(kinds.months_worked, 'integer');
  assert.equal(kinds.monthly_income, 'number');
  assert.equal(kinds.willing_to_work, 'boolean');
  assert.equal(kindOf(schema, schema.properties.consent), 'consent');
  assert.equal(kindOf(schema, schema.properties.members), 'group');
  assert.deepEqual(choicesOf(schema, member.properties.gender, 'zh-CN'), [{ value: 'male', label: '男' }, { value: 'female', label: '女' }]);
  assert.equal(itemLabel(schema.properties.members, '劳动力', 2, 'zh-CN'), '第2位劳动力');
  assert.equal(itemName(schema.properties.members, '劳动力', 'zh-CN'), '劳动力');
  assert.equal(itemName(schema.properties.members, 'Labourers', 'en'), 'Labourer');
});

test('an ID number gives birth date and gender, and keyboard quirks are tolerated', () => {
  assert.deepEqual(residentId('45222319830708039X'), { ok: true, birthDate: '1983-07-08', male: true });
  assert.deepEqual(residentId(' 45222319830708039x '), { ok: true, birthDate: '1983-07-08', male: true });
  assert.equal(residentId('452223198503150025').male, false);
  assert.deepEqual(residentId('452223198307080391'), { ok: false, problem: 'check_digit' });
  assert.deepEqual(residentId('4522231983070803'), { ok: false, problem: 'shape' });
  assert.deepEqual(residentId('452223198302300391'), { ok: false, problem: 'birth_date' });
  assert.ok(isMobile('\u3000１３８７７６１２３４５') && !isMobile('1387761234'));
});

test('messages are framed as the server frames them', () => {
  const catalogue = {
    messages: { 'resident_id.check_digit': '校验位不正确', max_length: '最多{limit}个字', unknown_fields: '有问卷中没有的字段：{fields}' },
    field: { separator: ' · ', message: '{field}：{problem}', questionnaire: '问卷', item: '{label} #{n}', list_separator: '、' },
  };
  assert.equal(message(catalogue, schema, { path: '/members/1/id_number', key: 'resident_id.check_digit' }, 'zh-CN'),
    '第2位劳动力 · 身份证号：校验位不正确');
  assert.equal(describe(catalogue, 'max_length', { limit: 50 }), '最多50个字');
  assert.equal(describe(catalogue, 'unknown_fields', { fields: ['a', 'b'] }), '有问卷中没有的字段：a、b');
});

test('pointers set and remove answers without touching the rest', () => {
  const answers = { members: [{ name: 'a' }, { name: 'b' }] };
  const next = pointer.set(answers, '/members/1/gender', 'female');
  assert.deepEqual(next.members[1], { name: 'b', gender: 'female' });
  assert.deepEqual(answers.members[1], { name: 'b' });
  assert.deepEqual(pointer.set(next, '/members/0/name', undefined).members[0], {});
  assert.equal(pointer.get(next, '/members/1/gender'), 'female');
});

test('numbers are kept as typed and read as numbers when sent', () => {
  assert.equal(numberFrom('3000.'), '3000.');
  assert.equal(numberFrom('3000.05'), 3000.05);
  assert.equal(numberFrom('　１２ '), 12);
  assert.equal(numberFrom('2.5'), 2.5);
  assert.equal(numberFrom(''), undefined);
  assert.equal(numberFrom('十二'), '十二');
  const answers = { members: [{ employment_status: 'stable', monthly_income: '4200', months_worked: '１０' }] };
  assert.deepEqual(prune(schema, schema, answers).members[0], { employment_status: 'stable', monthly_income: 4200, months_worked: 10 });
});

test('a question is hidden while its condition is open or forbids it', () => {
  const answers = { members: [{ name: '黄秀英' }, { employment_status: 'stable' }] };
  assert.ok(isHidden(schema, answers, '/members/0/unemployed_reason'));
  assert.ok(isHidden(schema, answers, '/members/1/willing_to_work'));
  assert.ok(!isHidden(schema, answers, '/members/1/monthly_income'));
  assert.ok(isHidden(schema, {}, '/settlement'));
  assert.ok(!isHidden(schema, { relocated: true }, '/settlement'));
  assert.ok(!isHidden(schema, answers, '/township'));
});

test('text is trimmed of what the server trims, no more', () => {
  assert.equal(normalize('\u0085 4510 \u3000'), '4510');
  assert.equal(normalize('\ufeff4510'), '\ufeff4510');
});

test('a reference does not override what the referring schema says itself', () => {
  const root = { $defs: { yn: { type: 'boolean', title: 'target' } } };
  assert.deepEqual(deref(root, { $ref: '#/$defs/yn', title: 'own' }), { type: 'boolean', title: 'own' });
});

// As an XLSForm converts them: questions of a group or a repeat that hang on an answer outside it.
const farm = {
  type: 'object',
  properties: {
    farms: { type: 'boolean' },
    size: { type: 'integer' },
    land: { type: 'object', properties: { area: { type: 'number' } } },
    people: { type: 'array', items: { type: 'object', properties: { name: { type: 'string' }, job: { type: 'string' } } } },
  },
  allOf: [
    { if: { properties: { farms: { const: true } }, required: ['farms'] },
      then: { properties: { land: { required: ['area'] } }, required: ['land'] },
      else: { properties: { land: { properties: { area: false } } } } },
    { if: { properties: { size: { exclusiveMinimum: 2 } }, required: ['size'] },
      else: { properties: { people: { items: { properties: { job: false } } } } } },
  ],
};

test('a question in a group or repeat is hidden by an answer outside it', () => {
  const answers = { farms: false, size: 2, land: { area: 3 }, people: [{ name: '黄丽', job: '工人' }] };
  assert.ok(isHidden(farm, answers, '/land/area'));
  assert.ok(isHidden(farm, answers, '/people/0/job'));
  assert.ok(!isHidden(farm, answers, '/people/0/name'));
  assert.deepEqual(prune(farm, farm, answers), { farms: false, size: 2, land: {}, people: [{ name: '黄丽' }] });
  const shown = { farms: true, size: 5, land: { area: 3 }, people: [{ name: '黄丽', job: '工人' }] };
  assert.ok(!isHidden(farm, shown, '/land/area'));
  assert.ok(!isHidden(farm, shown, '/people/0/job'));
  assert.deepEqual(prune(farm, farm, shown), shown);
});

test('the phone computes the calculations it can and leaves out the rest', async () => {
  const { evaluate, calculated } = await import('../../src/web/js/schema/calculate.js');
  const answers = { income: 12000, size: '4' };
  const lookup = (name) => ({ income: 12000, size: 4 })[name];
  assert.equal(evaluate('${income} div ${size}', lookup), 3000);
  assert.equal(evaluate('(${size} - 1) * 2 + 10 mod 4', lookup), 8);
  assert.equal(evaluate('-${size}', lookup), -4);
  assert.equal(evaluate('concat(${size}, "x")', lookup), undefined);
  assert.equal(evaluate('${missing} + 1', lookup), undefined);
  assert.equal(evaluate('${income} div 0', lookup), undefined);
  const form = {
    type: 'object',
    properties: {
      income: { type: 'number' }, size: { type: 'integer' },
      per_head: { 'x-calculation': '${income} div ${size}' },
      people: { type: 'array', items: { type: 'object', properties: {
        age: { type: 'integer' }, share: { 'x-calculation': '${per_head} * 1' }, left: { 'x-calculation': 'today()' } } } },
    },
  };
  const out = calculated(form, { ...answers, people: [{ age: 30, left: 'stale' }] });
  assert.deepEqual(out, { income: 12000, size: '4', per_head: 3000, people: [{ age: 30, share: 3000 }] });
  assert.equal(kindOf(form, form.properties.per_head), 'calculation');
});

test("a hint is shown in the worker's language, else in the default one", () => {
  const schema = { 'x-hint': '身份证上的姓名', 'x-hint-en': 'As on the ID card' };
  assert.equal(hintOf(schema, 'zh-CN'), '身份证上的姓名');
  assert.equal(hintOf(schema, 'en'), 'As on the ID card');
  assert.equal(hintOf({ 'x-hint': '只有中文' }, 'en'), '只有中文');
  assert.equal(hintOf({}, 'zh-CN'), undefined);
});
