import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { checkText, renderText, sizeTemplateText, smsSize } from '../controller/core/sms-text.ts';

const size = suite('smsSize');
const sizeCases = [
  { name: 'empty', text: '', want: { encoding: 'GSM-7', units: 0, segments: 0 } },
  { name: 'plain ASCII', text: 'Your code is 123456', want: { encoding: 'GSM-7', units: 19, segments: 1 } },
  { name: 'GSM accents stay GSM-7', text: 'Code: 1234 é à ü Ñ', want: { encoding: 'GSM-7', units: 18, segments: 1 } },
  { name: 'extension characters count twice', text: '€[]{}', want: { encoding: 'GSM-7', units: 10, segments: 1 } },
  { name: '160 septets fit one segment', text: 'a'.repeat(160), want: { encoding: 'GSM-7', units: 160, segments: 1 } },
  { name: '161 septets need two', text: 'a'.repeat(161), want: { encoding: 'GSM-7', units: 161, segments: 2 } },
  { name: '306 septets fit two parts of 153', text: 'a'.repeat(306), want: { encoding: 'GSM-7', units: 306, segments: 2 } },
  { name: '307 septets need three', text: 'a'.repeat(307), want: { encoding: 'GSM-7', units: 307, segments: 3 } },
  { name: 'an escape pair is not split across parts', text: 'a'.repeat(152) + '€' + 'a'.repeat(10), want: { encoding: 'GSM-7', units: 164, segments: 2 } },
  { name: 'escape at a part boundary moves to the next part', text: 'a'.repeat(152) + '€'.repeat(77), want: { encoding: 'GSM-7', units: 306, segments: 3 } },
  { name: 'ç (lowercase) is not GSM-7', text: 'ça', want: { encoding: 'UCS-2', units: 2, segments: 1 } },
  { name: 'Cyrillic is UCS-2', text: 'Ваш код', want: { encoding: 'UCS-2', units: 7, segments: 1 } },
  { name: '70 UCS-2 units fit one', text: 'я'.repeat(70), want: { encoding: 'UCS-2', units: 70, segments: 1 } },
  { name: '71 UCS-2 units need two', text: 'я'.repeat(71), want: { encoding: 'UCS-2', units: 71, segments: 2 } },
  { name: 'an emoji is two units', text: '🔐', want: { encoding: 'UCS-2', units: 2, segments: 1 } },
  { name: 'a surrogate pair is not split', text: 'я'.repeat(66) + '🔐' + 'я'.repeat(5), want: { encoding: 'UCS-2', units: 73, segments: 2 } },
  { name: '134 UCS-2 units fit two parts of 67', text: 'я'.repeat(134), want: { encoding: 'UCS-2', units: 134, segments: 2 } },
];
for (const c of sizeCases) size(c.name, () => assert.equal(smsSize(c.text), c.want));
size.run();

const check = suite('checkText');
const checkCases: { name: string; text: string; want: string[] }[] = [
  { name: 'one [Code]', text: 'Your code is [Code]', want: [] },
  { name: 'all placeholders', text: '[User], your code [Code] expires in [Minutes] min', want: [] },
  { name: 'no [Code]', text: 'Hello', want: ['code-placeholder-missing'] },
  { name: 'another template syntax', text: 'Your code is {{code}}', want: ['code-placeholder-missing'] },
  { name: '[Code] twice', text: '[Code] [Code]', want: ['code-placeholder-repeated'] },
  { name: 'upper case', text: 'Your code is [CODE]', want: ['placeholder-misspelled'] },
  { name: 'lower case', text: 'Your code is [code]', want: ['placeholder-misspelled'] },
  { name: 'spaces inside', text: 'Your code is [ Code ]', want: ['placeholder-misspelled'] },
  { name: 'Cyrillic Es look-alike', text: 'Your code is [Сode]', want: ['placeholder-misspelled'] },
  { name: 'Greek omicron look-alike', text: 'Your code is [Cοde]', want: ['placeholder-misspelled'] },
  { name: 'zero-width space inside', text: 'Your code is [Co\u200bde]', want: ['placeholder-misspelled'] },
  { name: 'full-width brackets', text: 'Your code is ［Code］', want: ['placeholder-misspelled'] },
  { name: 'digit zero for o', text: 'Your code is [C0de]', want: ['placeholder-misspelled'] },
  { name: 'misspelled [User] with a good [Code]', text: '[user]: [Code]', want: ['placeholder-misspelled'] },
  { name: 'unknown placeholder', text: '[Company] code [Code]', want: ['placeholder-unknown'] },
  { name: 'brackets that are not a placeholder word', text: 'Code [Code] (see [1/2])', want: [] },
];
for (const c of checkCases)
  check(c.name, () =>
    assert.equal(
      checkText(c.text, '/spec/text').map((f) => f.code),
      c.want,
    ),
  );
check('findings carry the pointer given', () => {
  assert.equal(checkText('none', '/spec/locales/fr')[0]!.pointer, '/spec/locales/fr');
});
check.run();

const render = suite('renderText');
render('substitutes every placeholder', () => {
  assert.is(renderText('[User]: [Code] ([Minutes] min)', { code: '123456', user: 'ada', minutes: 5 }), 'ada: 123456 (5 min)');
});
render('appends the WebOTP origin-bound line', () => {
  assert.is(renderText('Code [Code]', { code: '123456', user: 'u', minutes: 5 }, 'login.example.com'), 'Code 123456\n\n@login.example.com #123456');
});
render('sizes a template with the longest code and a 20-character user', () => {
  assert.equal(sizeTemplateText('[User] [Code]', 10, 10), { encoding: 'GSM-7', units: 31, segments: 1 });
});
render.run();
